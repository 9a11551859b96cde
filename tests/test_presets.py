"""Tests of the presets: the paper's, the recommended ones, preset files, and train's --preset."""

import json
import pathlib

import tensorflow as tf

from mkr_tf import config as mkr_config
from mkr_tf import errors
from mkr_tf import presets


class PresetsTest(tf.test.TestCase):

    def _file(self, document) -> pathlib.Path:
        path = pathlib.Path(self.create_tempdir().full_path) / "preset.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return path

    def test_paper_preset_is_the_papers_settings(self):
        for dataset, settings in mkr_config.PAPER_SETTINGS.items():
            self.assertEqual(presets.settings(dataset, "paper"), settings)
        self.assertEqual(presets.settings("my_data", "paper"), mkr_config.SYNTHETIC_SETTINGS)

    def test_default_is_recommended_only_where_a_tuned_preset_exists(self):
        for dataset in ("movie", "book", "music", "synthetic"):
            expected = "recommended" if presets.recommended_path(dataset).is_file() else "paper"
            self.assertEqual(presets.default_preset(dataset), expected)
        with self.assertRaisesRegex(errors.MKRError, "'my_data' has no recommended preset"):
            presets.settings("my_data", "recommended")

    def test_recommended_presets_are_valid_and_record_their_search(self):
        for path in sorted(presets.RECOMMENDED_DIR.glob("*.json")):
            with self.subTest(path.name):
                document = json.loads(path.read_text())
                self.assertIn("python -m mkr_tf.tune", document["found_by"])
                self.assertEqual(document["dataset"], path.stem)
                config = mkr_config.MKRConfig.for_dataset(path.stem, preset="recommended")
                for name, value in document["settings"].items():
                    self.assertEqual(getattr(config, name), value)

    def test_file_round_trip_and_flags_override_it(self):
        path = pathlib.Path(self.create_tempdir().full_path) / "preset.json"
        presets.write(path, "music", {"dim": 16, "rs_loss": "softmax", "lr_kge": 1,
                                      "residual": True}, found_by="by hand")
        self.assertEqual(presets.read(path), {"dim": 16, "rs_loss": "softmax", "lr_kge": 1,
                                              "residual": True})
        self.assertIsInstance(presets.read(path)["lr_kge"], float)
        config = mkr_config.MKRConfig.for_dataset("music", preset=str(path), dim=32)
        self.assertEqual((config.dim, config.rs_loss, config.lr_rs), (32, "softmax", 1e-3))

    def test_bad_files_name_the_file_and_the_problem(self):
        for document, message in (("{not json", "not a preset file"),
                                  ({"dim": 8}, 'needs a "settings" object'),
                                  ({"settings": {"dimm": 8}}, "unknown setting 'dimm'"),
                                  ({"settings": {"seed": 3}}, "unknown setting 'seed'"),
                                  ({"settings": {"residual": 1}},
                                   "setting 'residual' must be true or false, got 1"),
                                  ({"settings": {"residual": "false"}},
                                   "setting 'residual' must be true or false, got \"false\""),
                                  ({"settings": {"dim": 8.0}},
                                   "setting 'dim' must be an integer, got 8.0"),
                                  ({"settings": {"dim": True}},
                                   "setting 'dim' must be an integer, got true"),
                                  ({"settings": {"lr_rs": "1e-3"}},
                                   "setting 'lr_rs' must be a number, got \"1e-3\""),
                                  ({"settings": {"rs_loss": None}},
                                   "setting 'rs_loss' must be a string, got null")):
            path = self._file(document)
            with self.subTest(message), self.assertRaisesRegex(errors.MKRError,
                                                               f"{path}: .*{message}"):
                presets.read(path)
        with self.assertRaisesRegex(errors.MKRError, "no such preset file"):
            presets.settings("music", "/nonexistent/preset.json")


if __name__ == "__main__":
    tf.test.main()
