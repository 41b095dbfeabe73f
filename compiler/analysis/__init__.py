"""What the compiler tells about an IR graph: counts (params, MACs, memory, receptive
field) and the summary table."""
