"""Paired Student-t intervals against numbers worked out by hand."""

import math

import tensorflow as tf

from mkr_tf import significance


class PairedDifferenceTest(tf.test.TestCase):

    def test_known_interval(self):
        # d = 1, 2, 3, 4: mean 2.5, s_d = √(5/3), t_{3, 0.975} = 3.182446305284263.
        difference = significance.paired_difference([1, 2, 3, 4], [0, 0, 0, 0])
        half_width = 3.182446305284263 * math.sqrt(5 / 3) / 2
        self.assertAllClose([difference["low"], difference["mean"], difference["high"]],
                            [2.5 - half_width, 2.5, 2.5 + half_width])
        self.assertEqual(difference["n"], 4)
        self.assertTrue(difference["significant"])

    def test_an_interval_over_zero_is_not_significant(self):
        difference = significance.paired_difference([0.71, 0.69, 0.72], [0.70, 0.70, 0.70])
        self.assertLess(difference["low"], 0)
        self.assertGreater(difference["high"], 0)
        self.assertFalse(difference["significant"])
        self.assertEqual(significance.format_difference(difference).count("*"), 0)

    def test_needs_two_paired_seeds(self):
        with self.assertRaisesRegex(ValueError, "at least 2"):
            significance.paired_difference([0.7], [0.6])
        with self.assertRaisesRegex(ValueError, "equal-length"):
            significance.paired_difference([0.7, 0.8], [0.6])


if __name__ == "__main__":
    tf.test.main()
