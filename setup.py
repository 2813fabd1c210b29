"""Build pyconv's Cython kernels.

Every ``pyconv/_kernels/*.pyx`` becomes one extension module.  Flags: ``-O3``,
``-pthread`` (the kernels' thread pool, ``parallel.pyx``; without pthreads it
runs every task on the calling thread) and ``-march=native`` unless
``PYCONV_NATIVE=0``.  No OpenMP: every kernel runs on parallel.pyx's pool.
``PYCONV_DEBUG=1`` builds with Cython bounds checks and ``-O0 -g``.
``PYCONV_KERNELS=conv_direct,pooling`` builds only the named kernel modules
(for development: ``python setup.py build_ext --inplace``).
"""
import glob
import os
import shutil
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


PLAIN_PROGRAM = "int main(void) { return 0; }\n"


def _compiler_accepts(compiler, source, flags, link_flags=()):
    """True if ``compiler`` compiles and links the C program ``source`` with ``flags``."""
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        objects = compiler.compile([path], output_dir=tmp, extra_postargs=list(flags))
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=list(link_flags))
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildKernels(build_ext):
    """build_ext that adds -pthread and -march=native when the compiler allows them."""

    def build_extensions(self):
        debug = os.environ.get("PYCONV_DEBUG", "0") == "1"
        native = os.environ.get("PYCONV_NATIVE", "1") != "0"
        compile_flags = ["-O0", "-g"] if debug else ["-O3"]
        link_flags = []
        if self.compiler.compiler_type == "msvc":
            compile_flags = ["/O2"]
        else:
            if native and _compiler_accepts(self.compiler, PLAIN_PROGRAM, ["-march=native"]):
                compile_flags.append("-march=native")
            if _compiler_accepts(self.compiler, PLAIN_PROGRAM, ["-pthread"], ["-pthread"]):
                compile_flags.append("-pthread")
                link_flags.append("-pthread")
        for ext in self.extensions:
            ext.extra_compile_args = compile_flags + list(ext.extra_compile_args)
            ext.extra_link_args = link_flags + list(ext.extra_link_args)
        super().build_extensions()


def _extensions():
    debug = os.environ.get("PYCONV_DEBUG", "0") == "1"
    only = {name for name in os.environ.get("PYCONV_KERNELS", "").split(",") if name}
    extensions = []
    for path in sorted(glob.glob(os.path.join("pyconv", "_kernels", "*.pyx"))):
        name = path[:-4].replace(os.sep, ".")
        if only and name.rsplit(".", 1)[1] not in only:
            continue
        extensions.append(Extension(name, [path], define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]))
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "initializedcheck": debug,
        "cdivision": True,
        "nonecheck": False,
    }
    return cythonize(extensions, compiler_directives=directives, force=debug)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildKernels})
