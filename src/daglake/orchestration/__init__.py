"""Running the project by itself: schedules, backfills and alerts (SPEC §11)."""
