class GestimumRouter:
    """Gestimum tables belong to the customer's ERP: Django never migrates them.

    Reads and writes always name their alias explicitly (``.using(alias)``) in
    the gateway, so the router only has to keep migrations away.
    """

    app_label = "gestimum"

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == self.app_label:
            return False
        return None
