"""What every stage shares: settings, contracts, correlation ids, logging, metrics."""
