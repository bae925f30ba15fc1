"""``$filter`` queries: the JSON query language compiled to bound SQL over the analytics tables."""
