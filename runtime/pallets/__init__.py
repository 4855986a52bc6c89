"""runtime/pallets."""
