"""`calltrack demo`: a month of a local business's calls, through the product's own HTTP paths."""
