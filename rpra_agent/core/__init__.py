"""The core layer: value types, protocols and the step kernel. No I/O, nothing heavy.

Every other package imports from here; nothing here imports from another package.
"""
