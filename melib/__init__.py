"""melib: the helper library behind the micro-expression reproduction book.

Layers, lowest first (a module may import only from its own layer or below):

    runtime -> data -> face -> features -> models -> training -> evaluation
            -> visualization -> pipelines -> cli / reproduce / book
"""

__version__ = "0.1.0"
