"""Tests of mkr_tf.export: TF Serving layout, signatures, bad requests, the documented REST calls.

Every model here is small and built in the test; most are untrained, which is enough to check
that the export computes what the in-memory model computes.
"""

import dataclasses
import fcntl
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import data_prep
from mkr_tf import data as mkr_data
from mkr_tf import errors
from mkr_tf import export
from mkr_tf import model as mkr_model
from mkr_tf import runs
from mkr_tf import trainer
from mkr_tf.config import MKRConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
SERVING_DOC = REPO / "README.md"
K = 4


def documented_examples() -> list[tuple[dict, dict]]:
    """The (request, response) JSON bodies of the curl examples in README.md."""
    pairs = re.findall(r"-d '(\{.*?\})'\n```\s*```json\n(.*?)\n```", SERVING_DOC.read_text(), re.S)
    return [(json.loads(request), json.loads(response)) for request, response in pairs]


@dataclasses.dataclass(frozen=True)
class Sizes:
    n_users: int
    n_items: int
    n_entities: int
    n_relations: int


def sizes_covering_the_documented_requests() -> Sizes:
    """Table sizes small enough for fast tests, large enough for every documented valid id."""
    most = {"user_id": 19, "item_id": 49, "head": 49, "relation": 3, "tail": 79, "k": 1}
    for request, response in documented_examples():
        if "error" not in response:
            for name, values in request["inputs"].items():
                most[name] = max(most[name], int(np.max(values)))
    n_items = max(most["item_id"], most["head"], most["k"] - 1) + 1
    return Sizes(n_users=most["user_id"] + 1, n_items=n_items,
                 n_entities=max(most["tail"] + 1, n_items), n_relations=most["relation"] + 1)


SIZES = sizes_covering_the_documented_requests()


def small_data(sizes: Sizes = SIZES, seed: int = 0) -> mkr_data.MKRData:
    """Each user rates 8 distinct items, half positive; each item has 2 random triples."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(sizes.n_users), 8)
    items = np.concatenate([rng.permutation(sizes.n_items)[:8] for _ in range(sizes.n_users)])
    ratings = np.stack([users, items, np.arange(len(users)) % 2], axis=1)
    heads = np.repeat(np.arange(sizes.n_items), 2)
    kg = np.stack([heads, rng.integers(sizes.n_relations, size=len(heads)),
                   rng.integers(sizes.n_entities, size=len(heads))], axis=1)
    train, eval_split, test = mkr_data.split_ratings(ratings, seed)
    return mkr_data.MKRData(train, eval_split, test, kg, sizes.n_users, sizes.n_items,
                            sizes.n_entities, sizes.n_relations)


def small_model(data: mkr_data.MKRData, use_inner_product: bool = True):
    config = MKRConfig(dim=4, L=2, H=2, use_inner_product=use_inner_product)
    return mkr_model.build_model(config, data)


def train_history(data: mkr_data.MKRData) -> list[set[int]]:
    history = [set() for _ in range(data.n_users)]
    for user, item, label in data.train:
        if not label:
            continue
        history[user].add(int(item))
    return history


def all_pairs(data: mkr_data.MKRData) -> tuple[np.ndarray, np.ndarray]:
    users, items = np.meshgrid(np.arange(data.n_users), np.arange(data.n_items), indexing="ij")
    return users.ravel(), items.ravel()


def check_the_export_scores_as_the_model(model, data: mkr_data.MKRData, tmp_path,
                                         ks: tuple[int, ...], prepared=None) -> None:
    """The export's probabilities and KG scores are the model's, and its `recommend` ranks the
    probabilities (brute force)."""
    saved = tf.saved_model.load(str(export.export_model(model, data, tmp_path,
                                                        log=lambda _: None, prepared=prepared)))
    users, items = all_pairs(data)
    probabilities = saved.signatures["serving_default"](
        user_id=tf.constant(users), item_id=tf.constant(items))["probability"].numpy()
    np.testing.assert_allclose(
        probabilities, model.predict_batch(tf.constant(users), tf.constant(items)).numpy(),
        rtol=0, atol=1e-6)
    heads, relations, tails = (tf.constant(column) for column in data.kg.T)
    np.testing.assert_allclose(
        saved.signatures["kg_score"](head=heads, relation=relations, tail=tails)["score"],
        model.kge_score(heads, relations, tails), rtol=0, atol=1e-6)
    for k in ks:
        top = saved.signatures["recommend"](user_id=tf.range(data.n_users, dtype=tf.int64),
                                            k=tf.constant(k))
        check_against_brute_force(probabilities.reshape(data.n_users, data.n_items),
                                  top["item_ids"].numpy(), top["scores"].numpy(),
                                  train_history(data))


def check_against_brute_force(probabilities: np.ndarray, item_ids: np.ndarray,
                              scores: np.ndarray, history: list[set[int]]) -> None:
    """`recommend`'s answer against a numpy ranking of every unseen item by its probability.

    Compares scores rather than item ids, so that items tied on score may come in any order.
    """
    for user, (user_items, user_scores) in enumerate(zip(item_ids, scores)):
        candidates = np.array(sorted(set(range(probabilities.shape[1])) - history[user]))
        expected = np.sort(probabilities[user, candidates])[::-1][:len(user_items)]
        found = user_items >= 0
        assert found.sum() == len(expected)
        np.testing.assert_allclose(user_scores[found], expected, rtol=0, atol=1e-6)
        assert len(set(user_items[found])) == found.sum()
        assert not set(user_items[found]) & history[user]
        np.testing.assert_allclose(probabilities[user, user_items[found]], user_scores[found],
                                   rtol=0, atol=1e-6)
        assert (user_items[~found] == -1).all() and (user_scores[~found] == 0).all()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(data, model, version dir) of an untrained inner-product model."""
    data = small_data()
    model = small_model(data)
    version_dir = export.export_model(model, data, tmp_path_factory.mktemp("models") / "small",
                                      log=lambda _: None)
    return data, model, version_dir


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported[2]))


# Runs in a fresh interpreter that cannot import mkr_tf: the export must be all it needs.
FRESH_PROCESS_SCRIPT = r"""
import json
import sys

import numpy as np
import tensorflow as tf

version_dir, inputs_path, outputs_path = sys.argv[1:]
inputs = np.load(inputs_path)
loaded = tf.saved_model.load(version_dir)
signatures = loaded.signatures


def rest_predict(request):
    # What TF Serving's REST predict API answers to a columnar ("inputs") request.
    function = signatures[request.get("signature_name", "serving_default")]
    specs = function.structured_input_signature[1]
    try:
        outputs = function(**{name: tf.constant(value, specs[name].dtype)
                              for name, value in request["inputs"].items()})
    except tf.errors.InvalidArgumentError as error:
        return {"error": error.message}
    outputs = {name: tensor.numpy().tolist() for name, tensor in outputs.items()}
    return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}


users, items = tf.constant(inputs["users"]), tf.constant(inputs["items"])
all_users = tf.range(int(loaded.n_users.numpy()), dtype=tf.int64)
top_k = signatures["recommend"](user_id=all_users, k=tf.constant(int(inputs["k"])))
everything = signatures["recommend"](user_id=all_users, k=tf.constant(int(loaded.n_items.numpy())))
kg = inputs["kg"]
np.savez(
    outputs_path,
    probability=signatures["serving_default"](user_id=users, item_id=items)["probability"],
    top_k_items=top_k["item_ids"], top_k_scores=top_k["scores"],
    all_items=everything["item_ids"], all_scores=everything["scores"],
    kg_score=signatures["kg_score"](head=tf.constant(kg[:, 0]), relation=tf.constant(kg[:, 1]),
                                    tail=tf.constant(kg[:, 2]))["score"],
    rest=json.dumps([rest_predict(request) for request in json.loads(str(inputs["requests"]))]),
    imported_mkr_tf=any(name.split(".")[0] in ("mkr_tf", "data_prep") for name in sys.modules))
"""


def saved_model_cli() -> str:
    beside_python = pathlib.Path(sys.executable).parent / "saved_model_cli"
    return str(beside_python) if beside_python.exists() else shutil.which("saved_model_cli")


def error_lines(stderr: str) -> list[str]:
    """`stderr` without the start-up lines TF 2.21's C++ runtime prints whatever
    TF_CPP_MIN_LOG_LEVEL says (oneDNN and CUDA notices)."""
    return [line for line in stderr.splitlines()
            if not re.match(r"WARNING: All log messages before absl::InitializeLog|"
                            r"[IWE]\d{4} \d\d:\d\d:", line)]


def layout(outputs):
    """Keys, shapes and number kinds of a REST "outputs" value, without the numbers."""
    if isinstance(outputs, dict):
        return {name: layout(value) for name, value in outputs.items()}
    array = np.array(outputs)
    return array.shape, array.dtype.kind


def assertion_text(message: str) -> str:
    """The assertion line of an error, with the model-dependent valid range blanked out."""
    line = re.search(r"assertion failed: .*", message).group(0)
    return re.sub(r"valid ids are 0 to \d+", "valid ids are 0 to N", line)


class TestFreshProcess:
    """The export loaded with tf.saved_model.load alone, in a new process."""

    def test_signatures_match_the_model_brute_force_and_the_docs(self, exported, tmp_path):
        data, model, version_dir = exported
        users, items = all_pairs(data)
        examples = documented_examples()
        np.savez(tmp_path / "inputs.npz", users=users, items=items, kg=data.kg, k=K,
                 requests=json.dumps([request for request, _ in examples]))
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
        fresh = subprocess.Popen(
            [sys.executable, "-c", FRESH_PROCESS_SCRIPT, str(version_dir),
             str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")],
            cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        cli = subprocess.run([saved_model_cli(), "show", "--all", "--dir", str(version_dir)],
                             capture_output=True, text=True, timeout=120, env=environment)
        _, stderr = fresh.communicate(timeout=120)
        assert fresh.returncode == 0, stderr
        outputs = np.load(tmp_path / "outputs.npz")
        assert not outputs["imported_mkr_tf"]

        expected = model.predict_batch(tf.constant(users), tf.constant(items)).numpy()
        np.testing.assert_allclose(outputs["probability"], expected, rtol=0, atol=1e-6)
        kg = tf.constant(data.kg)
        np.testing.assert_allclose(outputs["kg_score"],
                                   model.kge_score(kg[:, 0], kg[:, 1], kg[:, 2]).numpy(),
                                   rtol=0, atol=1e-6)

        probabilities = outputs["probability"].reshape(data.n_users, data.n_items)
        history = train_history(data)
        assert outputs["top_k_items"].shape == (data.n_users, K)
        check_against_brute_force(probabilities, outputs["top_k_items"],
                                  outputs["top_k_scores"], history)
        # k = every item: each user's train items are exactly the -1 padding.
        check_against_brute_force(probabilities, outputs["all_items"], outputs["all_scores"],
                                  history)

        for (request, documented), answered in zip(examples, json.loads(str(outputs["rest"]))):
            if "error" in documented:
                assert assertion_text(answered["error"]) == assertion_text(documented["error"])
            else:
                assert layout(answered["outputs"]) == layout(documented["outputs"]), request

        assert cli.returncode == 0, cli.stderr
        for signature, tensors in [
                ("serving_default", [("inputs", "user_id", "DT_INT64", "(-1)"),
                                     ("inputs", "item_id", "DT_INT64", "(-1)"),
                                     ("outputs", "probability", "DT_FLOAT", "(-1)")]),
                ("recommend", [("inputs", "user_id", "DT_INT64", "(-1)"),
                               ("inputs", "k", "DT_INT32", "()"),
                               ("outputs", "item_ids", "DT_INT64", "(-1, -1)"),
                               ("outputs", "scores", "DT_FLOAT", "(-1, -1)")]),
                ("kg_score", [("inputs", "head", "DT_INT64", "(-1)"),
                              ("inputs", "relation", "DT_INT64", "(-1)"),
                              ("inputs", "tail", "DT_INT64", "(-1)"),
                              ("outputs", "score", "DT_FLOAT", "(-1)")])]:
            section = cli.stdout.split(f"signature_def['{signature}']:")[1]
            section = section.split("signature_def[")[0]
            for direction, name, dtype, shape in tensors:
                assert re.search(rf"{direction}\['{name}'\] tensor_info:\s+dtype: {dtype}\s+"
                                 rf"shape: {re.escape(shape)}", section), (signature, name)

    def test_the_docs_show_every_signature(self):
        documented = {request.get("signature_name", "serving_default")
                      for request, _ in documented_examples()}
        assert documented == set(export.SIGNATURES)


class TestBadRequests:

    @pytest.mark.parametrize("signature, inputs, bad_input, bad_values", [
        ("serving_default", dict(user_id=[0, -1], item_id=[0, 0]), "user_id", "-1"),
        ("serving_default", dict(user_id=[SIZES.n_users, 0], item_id=[0, 0]), "user_id",
         f"{SIZES.n_users}"),
        ("serving_default", dict(user_id=[0], item_id=[SIZES.n_items]), "item_id",
         f"{SIZES.n_items}"),
        ("serving_default", dict(user_id=[0], item_id=[-5]), "item_id", "-5"),
        ("recommend", dict(user_id=[1, -3, SIZES.n_users + 5], k=2), "user_id",
         f"-3 {SIZES.n_users + 5}"),
        ("kg_score", dict(head=[SIZES.n_items], relation=[0], tail=[0]), "head",
         f"{SIZES.n_items}"),
        ("kg_score", dict(head=[0], relation=[SIZES.n_relations], tail=[0]), "relation",
         f"{SIZES.n_relations}"),
        ("kg_score", dict(head=[0], relation=[0], tail=[-2]), "tail", "-2"),
        ("kg_score", dict(head=[0], relation=[0], tail=[SIZES.n_entities]), "tail",
         f"{SIZES.n_entities}"),
    ])
    def test_out_of_range_ids_name_the_input_and_the_values(self, loaded, signature, inputs,
                                                            bad_input, bad_values):
        function = loaded.signatures[signature]
        specs = function.structured_input_signature[1]
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            function(**{name: tf.constant(value, specs[name].dtype)
                        for name, value in inputs.items()})
        assert f"{bad_input} out of range: valid ids are 0 to " in caught.value.message
        assert f"got] [{bad_values}]" in caught.value.message

    @pytest.mark.parametrize("signature, inputs, lengths", [
        ("serving_default", dict(user_id=[0, 1, 2], item_id=[5]), "3 1"),
        ("serving_default", dict(user_id=[0], item_id=[1, 2]), "1 2"),
        ("serving_default", dict(user_id=[0, 1, 2], item_id=[1, 2]), "3 2"),
        ("kg_score", dict(head=[0, 1], relation=[0], tail=[0, 1]), "2 1 2"),
        ("kg_score", dict(head=[0], relation=[0], tail=[0, 1, 2]), "1 1 3"),
    ])
    def test_inputs_of_unequal_lengths_are_refused(self, loaded, signature, inputs, lengths):
        function = loaded.signatures[signature]
        with pytest.raises(tf.errors.InvalidArgumentError) as caught:
            function(**{name: tf.constant(value, tf.int64) for name, value in inputs.items()})
        names = ", ".join(inputs)
        assert f"{names} must have the same length; got lengths] [{lengths.replace(' ', '] [')}]" \
            in caught.value.message, caught.value.message

    @pytest.mark.parametrize("k", [0, -1, SIZES.n_items + 1])
    def test_k_outside_one_to_the_catalogue_size(self, loaded, k):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=rf"k out of range: it must be 1 to {SIZES.n_items}, the number "
                                 rf"of items; got\] \[{k}\]"):
            loaded.signatures["recommend"](user_id=tf.constant([0], tf.int64), k=tf.constant(k))

    def test_good_requests_work_after_bad_ones(self, loaded):
        recommend = loaded.signatures["recommend"]
        with pytest.raises(tf.errors.InvalidArgumentError):
            recommend(user_id=tf.constant([-1], tf.int64), k=tf.constant(1))
        assert recommend(user_id=tf.constant([0, 1], tf.int64),
                         k=tf.constant(3))["item_ids"].shape == (2, 3)
        nobody = recommend(user_id=tf.zeros([0], tf.int64), k=tf.constant(3))
        assert nobody["scores"].shape == (0, 3)


class TestExport:

    def test_mlp_head_ranks_every_pair_through_the_mlp(self, tmp_path):
        data = small_data(Sizes(n_users=6, n_items=12, n_entities=20, n_relations=2))
        check_the_export_scores_as_the_model(small_model(data, use_inner_product=False), data,
                                             tmp_path, ks=(K, data.n_items))

    def test_options_beyond_the_paper_serve_as_they_score(self, tmp_path):
        # Users' histories, items' neighbours, biases and one table for items and entities are
        # all in the export.
        data = small_data(Sizes(n_users=6, n_items=12, n_entities=20, n_relations=2))
        config = MKRConfig(dim=4, L=2, history_length=3, item_neighbours=2, use_biases=True,
                           tie_item_entity=True, residual=True)
        model = mkr_model.build_model(config, data)
        assert (model.item_neighbours.numpy() >= 0).any()
        model.item_bias.embeddings.assign(tf.random.normal([data.n_items, 1]))
        check_the_export_scores_as_the_model(model, data, tmp_path, ks=(K,))

    def test_a_serving_prepared_before_training_serves_the_trained_weights(self, tmp_path):
        data = small_data()
        model = mkr_model.build_model(MKRConfig(dim=4, L=2, use_biases=True), data)
        prepared = export.prepare(model, data.train)
        # Trained after the graphs were traced: the export must serve these weights.
        for weight in model.trainable_weights:
            weight.assign(tf.random.normal(weight.shape, seed=7))
        check_the_export_scores_as_the_model(model, data, tmp_path, ks=(K,), prepared=prepared)
        with pytest.raises(ValueError, match="another model"):
            export.export_model(small_model(data), data, tmp_path, prepared=prepared)
        with pytest.raises(ValueError, match="other training data"):
            export.export_model(model, small_data(seed=1), tmp_path, prepared=prepared)

    def test_versions_count_up_past_the_highest_and_ignore_other_folders(self, exported, tmp_path):
        data, model, _ = exported
        for name in ("7", "3", "latest"):
            (tmp_path / name).mkdir()
        messages = []
        first = export.export_model(model, data, tmp_path, log=messages.append)
        # Another model: here the same weights with an item map, which the export serves too.
        item_ids = [(f"artist{item}", f"m.{item}") for item in range(data.n_items)]
        second = export.export_model(model, data, tmp_path, item_ids=item_ids,
                                     log=messages.append)
        assert (first, second) == (tmp_path / "8", tmp_path / "9")
        assert export.versions(tmp_path) == [3, 7, 8, 9]
        assert (second / "saved_model.pb").is_file()
        assert sorted(path.name for path in tmp_path.iterdir()) == ["3", "7", "8", "9", "latest"]
        assert messages[0].startswith(f"exported {first} ")

    def test_the_model_the_newest_version_serves_adds_no_version(self, exported, tmp_path):
        data, model, _ = exported
        messages = []
        first = export.export_model(model, data, tmp_path, log=messages.append)
        assert export.export_model(model, data, tmp_path, log=messages.append) == first
        assert messages[1] == f"{first} already serves this model (same weights and data); no new version"
        table = model.user_embedding.weights[0]
        original = table.numpy()
        table.assign(original + 1)  # retrained: other weights
        try:
            assert export.export_model(model, data, tmp_path, log=messages.append) == tmp_path / "2"
        finally:
            table.assign(original)
        assert export.versions(tmp_path) == [1, 2]

    def test_a_failed_export_leaves_no_version_and_no_staging(self, exported, tmp_path,
                                                              monkeypatch):
        data, model, _ = exported
        (tmp_path / "1").mkdir()

        def fail_half_way(module, path, signatures):
            pathlib.Path(path, "variables").mkdir(parents=True)
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(export.tf.saved_model, "save", fail_half_way)
        with pytest.raises(errors.RunDirError,
                           match=f"^{tmp_path}: cannot write the export: no space left on device$"):
            export.export_model(model, data, tmp_path, log=lambda _: None)
        assert [path.name for path in tmp_path.iterdir()] == ["1"]

    def test_a_killed_exports_staging_folder_goes_at_the_next_export(self, exported, tmp_path):
        data, model, _ = exported
        (tmp_path / ".tmp-left-by-a-kill" / "variables").mkdir(parents=True)
        in_use = tmp_path / ".tmp-of-a-running-export"
        in_use.mkdir()
        held = os.open(in_use, os.O_RDONLY)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)  # as a running export does
            export.export_model(model, data, tmp_path, log=lambda _: None)
        finally:
            os.close(held)
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            ".tmp-of-a-running-export", "1"]

    def test_a_file_as_export_dir_is_refused_before_anything_is_written(self, exported, tmp_path):
        data, model, _ = exported
        (tmp_path / "file").write_text("mine")
        with pytest.raises(errors.RunDirError, match="is a file, not a folder"):
            export.export_model(model, data, tmp_path / "file" / "music", log=lambda _: None)

    def test_item_ids_become_an_asset(self, exported, tmp_path):
        data, model, _ = exported
        item_ids = [(f"artist{item}", f"m.{item}") for item in range(data.n_items)]
        version_dir = export.export_model(model, data, tmp_path, item_ids=item_ids,
                                          log=lambda _: None)
        saved = tf.saved_model.load(str(version_dir))
        rows = pathlib.Path(saved.item_ids_tsv.asset_path.numpy().decode()).read_text().splitlines()
        assert rows[0] == "item\titem_id\tentity_id"
        assert rows[1:] == [f"{item}\tartist{item}\tm.{item}" for item in range(data.n_items)]
        assert [int(getattr(saved, name).numpy()) for name in (
            "n_users", "n_items", "n_entities", "n_relations")] == list(
                dataclasses.astuple(SIZES))
        with pytest.raises(ValueError,
                           match=f"item_ids lists 3 items, the model has {data.n_items}"):
            export.export_model(model, data, tmp_path, item_ids=item_ids[:3])


def write_raw_music(data_dir: pathlib.Path, n_users: int = 12, n_artists: int = 15) -> None:
    """A Last.FM-shaped raw dataset: artist ids 100, 101, ... are entities e100, e101, ..."""
    rng = np.random.default_rng(0)
    folder = data_dir / "music"
    folder.mkdir(parents=True)
    rows = [f"{user}\t{100 + artist}\t{rng.integers(1, 500)}"
            for user in range(1000, 1000 + n_users)
            for artist in rng.choice(n_artists, 4, replace=False)]
    (folder / "user_artists.dat").write_text("userID\tartistID\tweight\n" + "\n".join(rows) + "\n")
    (folder / "item_index2entity_id.txt").write_text(
        "".join(f"{100 + artist}\te{100 + artist}\n" for artist in range(n_artists)))
    (folder / "kg.txt").write_text(
        "".join(f"e{100 + artist}\tgenre\tg{artist % 3}\n" for artist in range(n_artists)))


class TestExportRun:

    def test_exports_the_best_weights_with_the_raw_item_ids(self, tmp_path):
        write_raw_music(tmp_path / "data")
        source = dict(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                      prepare_options=dict(download=False))
        data = mkr_data.load_dataset("music", source["data_dir"], source["cache_dir"], seed=0,
                                     log=lambda _: None, download=False)
        config = MKRConfig(n_epochs=1, dim=4, batch_size=16)
        trainer.train(config, data, tmp_path / "run", "music", log=lambda _: None,
                      data_source=source)
        version_dir = export.export_run(tmp_path / "run", tmp_path / "models", log=lambda _: None)
        assert version_dir == tmp_path / "models" / "1"

        saved = tf.saved_model.load(str(version_dir))
        rows = pathlib.Path(saved.item_ids_tsv.asset_path.numpy().decode()).read_text().splitlines()
        items = data_prep.read_meta(next((tmp_path / "cache" / "music").iterdir()))["items"]
        assert rows[1:] == [f"{index}\t{item}\t{entity}" for index, (item, entity)
                            in enumerate(zip(items["item_id"], items["entity_id"]))]
        assert rows[1] == "0\t100\te100"
        user_rows = pathlib.Path(
            saved.user_ids_tsv.asset_path.numpy().decode()).read_text().splitlines()
        # Users are numbered by first positive; write_raw_music lists users 1000, 1001, ...
        assert user_rows[0] == "user\tuser_id"
        assert user_rows[1:] == [f"{index}\t{1000 + index}" for index in range(data.n_users)]
        # The same run exported again: the newest version already serves it.
        assert export.export_run(tmp_path / "run", tmp_path / "models",
                                 log=lambda _: None) == version_dir
        best = runs.load_run(tmp_path / "run").model
        users, items = all_pairs(data)
        np.testing.assert_allclose(
            saved.signatures["serving_default"](user_id=tf.constant(users),
                                                item_id=tf.constant(items))["probability"],
            best.predict_batch(tf.constant(users), tf.constant(items)), rtol=0, atol=1e-6)

    def test_command_line(self, tmp_path):
        environment = {**os.environ, "PYTHONPATH": str(REPO)}

        def start(run_dir):
            return subprocess.Popen(
                [sys.executable, "-m", "mkr_tf.export", f"--run_dir={run_dir}"], cwd=tmp_path,
                env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        # Started first, to overlap with the training below: most of it is importing TensorFlow.
        missing = start(tmp_path / "nothing")
        # A processed-only dataset: no item map, so the export has no item_ids.tsv.
        small = small_data(Sizes(n_users=6, n_items=12, n_entities=20, n_relations=2))
        mkr_data.write_processed(tmp_path / "data" / "tiny",
                                 np.concatenate([small.train, small.eval, small.test]), small.kg)
        source = dict(data_dir=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"))
        data = mkr_data.load_dataset("tiny", source["data_dir"], source["cache_dir"], seed=0,
                                     log=lambda _: None)
        trainer.train(MKRConfig(n_epochs=1, dim=4, batch_size=16), data, tmp_path / "run",
                      "tiny", log=lambda _: None, data_source=source)
        exported = start(tmp_path / "run")

        _, stderr = missing.communicate(timeout=120)
        assert missing.returncode == 2
        [line] = error_lines(stderr)
        assert line.startswith("mkr_tf.export: error: ") and "results.json: not found" in line

        stdout, stderr = exported.communicate(timeout=120)
        assert exported.returncode == 0, stderr
        version_dir = pathlib.Path("saved_models", "tiny", "1")
        assert f"exported {version_dir} " in stdout
        assert (tmp_path / version_dir / "saved_model.pb").is_file()
        assert not (tmp_path / version_dir / "assets" / export.ITEM_IDS_ASSET).exists()
