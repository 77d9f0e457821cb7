"""Clinical evaluation on bundled vignettes: accuracy, safety, citations, latency."""
