"""Rubrics (span → score), the five cluster checks in SQL, thresholds and the GX gate."""
