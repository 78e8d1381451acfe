"""Build script for the compiled core (everything else lives in pyproject.toml).

``FASTPCAP_NO_EXTENSIONS=1`` skips the extension (pure-Python install); otherwise a failed
compile fails the install, so a slow build never ships unnoticed.  ``FASTPCAP_DEBUG_BUILD=1``
turns bounds checks on and optimisation off.
"""

import os
import sys

from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def extensions() -> list:
    if _flag("FASTPCAP_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize

    debug = _flag("FASTPCAP_DEBUG_BUILD")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "initializedcheck": debug,
        "cdivision": True,
        "embedsignature": True,
    }
    if sys.platform == "win32":  # MSVC
        cflags = ["/Od", "/Zi"] if debug else ["/O2"]
    else:  # gcc, clang: no -g in a release build (the wheel is 7x smaller without debug info)
        cflags = ["-O0", "-g"] if debug else ["-O3", "-g0"]
    ext = Extension(
        "fastpcap._fastpcap",
        ["src/_fastpcap.pyx"],
        extra_compile_args=cflags,
    )
    # Separate generated C for the debug build, so neither build reuses the other's.
    build_dir = "build/cython-debug" if debug else "build/cython"
    return cythonize([ext], compiler_directives=directives, build_dir=build_dir)


setup(ext_modules=extensions())
