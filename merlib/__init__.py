import importlib.metadata as _m
__version__ = '0.1.0'
