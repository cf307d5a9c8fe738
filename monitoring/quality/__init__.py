"""Live model quality: realized metrics from labels and estimates without them."""
