"""Formatting a report: text, JSON, Graphviz dot; escaping target strings."""
