"""Pure functions of the campaign: statistics, integrity and tracking checks. No service needed."""
