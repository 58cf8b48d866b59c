"""Log portal users in by e-mail address instead of user name."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """``authenticate(username=<e-mail>, password=...)`` for any active account with that address.

    Permissions and ``get_user`` come from ModelBackend; the admin keeps its
    own user-name login through ModelBackend itself.
    """

    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        address = (email or username or "").strip()
        if "@" not in address or password is None:
            return None
        users = list(get_user_model()._default_manager.filter(email__iexact=address).order_by("pk"))
        if not users:
            # Hash anyway so that a missing address takes as long as a wrong password.
            get_user_model()().set_password(password)
            return None
        for user in users:
            if user.check_password(password) and self.user_can_authenticate(user):
                return user
        return None
