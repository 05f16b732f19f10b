"""Classical controllers producing collective thrust + body rate (CTBR) commands."""
