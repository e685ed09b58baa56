"""CellSafe Gateway: the edge daemon of a hazardous-goods warehouse."""

__version__ = "0.1.0"
