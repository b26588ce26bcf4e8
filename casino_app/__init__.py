"""HashHouse: an open-source, self-hostable, provably fair crypto casino."""

__version__ = "0.1.0"
