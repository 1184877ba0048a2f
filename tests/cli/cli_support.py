"""What the command-line test suites share (imported from the scripts' own folder)."""
import unittest


class CleanErrors(unittest.TestCase):
    """The contract for bad input: a non-zero exit (not a signal) and exactly one line on
    stderr, `rangeguard: error: ...`, containing every fragment given."""

    def assert_clean_error(self, p, *fragments):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertLess(p.returncode, 128, "killed by a signal")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, f"expected one line on stderr, got: {p.stderr!r}")
        self.assertTrue(lines[0].startswith("rangeguard: error: "), lines[0])
        for f in fragments:
            self.assertIn(f, lines[0])
