"""The calls file: calls aggregated into logical blocks, or one record per call (`--each-call`)."""
