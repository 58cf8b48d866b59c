"""Everything that touches a customer's Gestimum database lives in this package."""
