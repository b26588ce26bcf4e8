"""Outside game providers: their dialects, and the fairness schemes they publish."""
