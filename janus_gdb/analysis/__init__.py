"""From snapshots of the target to a report: classification, owners, graph, verdict."""
