"""Great Expectations checks of a campaign run (see `expectations.suites`)."""
