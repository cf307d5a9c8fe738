"""What a monitor run publishes: summary, history, report server and Evidently UI."""
