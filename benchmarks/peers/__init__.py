"""Other gateways run on the same device server and broker as ours, for comparison."""
