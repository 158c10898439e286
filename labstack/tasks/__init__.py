"""invoke task groups (one module per group: ray, job, cost, ...), added to the collection by tasks.py."""
