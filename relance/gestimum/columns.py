"""Reach columns that are only known at run time (``XXX_*`` custom fields)."""

from django.db.models import Expression, F


class SiblingColumn(Expression):
    """A column of the same table as the declared field ``anchor``.

    ``SiblingColumn("tiers__pcf_rs", "XXX_TOUR", CharField())`` makes the ORM
    join TIERS as it would for ``tiers__pcf_rs`` and then reads ``XXX_TOUR``
    from that joined table. The column name must have been checked against the
    database's introspection first; it is quoted by the backend, and every
    value compared with it stays a bound parameter.

    The anchor must not be the join's target key (``tiers__pcf_code``): Django
    would trim the join and read the foreign key of the base table instead.
    """

    def __init__(self, anchor, column, output_field):
        super().__init__(output_field=output_field)
        self.anchor = anchor
        self.column = column
        self.resolved_anchor = None

    def __repr__(self):
        return f"SiblingColumn({self.anchor!r}, {self.column!r})"

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False,
                           for_save=False):
        clone = self.copy()
        clone.resolved_anchor = F(self.anchor).resolve_expression(
            query, allow_joins, reuse, summarize, for_save
        )
        return clone

    def as_sql(self, compiler, connection):
        alias = self.resolved_anchor.alias
        return f"{compiler.quote_name_unless_alias(alias)}.{connection.ops.quote_name(self.column)}", []

    def get_group_by_cols(self):
        return [self]
