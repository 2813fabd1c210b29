"""The start of a script run in a fresh interpreter in which importing torch fails (tests that pyconv runs
without torch): prepend ``REFUSE_TORCH`` to the script's own text."""
REFUSE_TORCH = '''import sys


class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not available in this process")


sys.meta_path.insert(0, RefuseTorch())
'''
