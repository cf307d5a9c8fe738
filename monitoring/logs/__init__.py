"""Reading the prediction logs: listing, Arrow tables, compaction, time windows."""
