"""Hybrid index: incremental builds, filters, the query cache, Chroma server mode."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from clinreason.config import Settings
from clinreason.knowledge.chunking import all_chunks
from clinreason.knowledge.evaluation import load_eval_queries
from clinreason.knowledge.index import KnowledgeIndex
from clinreason.knowledge.query import expand_query
from clinreason.knowledge.retrieval import retrieve

KB = "uti-cystitis/CA-ON/"  # chunk ids are scoped to their knowledge base (protocol, profile)


def test_incremental_build_embeds_only_what_changed(kb_index, tmp_path):
    chunks = list(all_chunks()[:6])
    settings = Settings(data_dir=tmp_path, chroma_collection="incremental-test")
    idx = KnowledgeIndex(chunks, settings, embedder=kb_index.embedder)
    assert not idx.is_current
    first = idx.build()
    assert (first.embedded, first.unchanged, first.removed) == (6, 0, 0)
    assert idx.last_build is first
    assert idx.is_current

    again = KnowledgeIndex(chunks, settings, embedder=kb_index.embedder).build()
    assert (again.embedded, again.unchanged) == (0, 6)

    edited = chunks[2].model_copy(update={"text": chunks[2].text + " Edited.", "content_hash": "0" * 16})
    changed = KnowledgeIndex([*chunks[:2], edited, *chunks[3:5]], settings, embedder=kb_index.embedder)
    assert not changed.is_current
    report = changed.build()
    assert (report.embedded, report.removed, report.unchanged) == (1, 1, 4)
    assert changed.collection.count() == 5


@pytest.mark.parametrize("method", ["bm25", "dense", "rrf", "hybrid"])
def test_kind_and_agent_filters_hold_for_every_method(kb_index, method):
    hits = kb_index.search("interaction that raises potassium", 8, {"kind": "monograph", "option": "trimethoprim"}, method)
    assert hits
    for cid, _ in hits:
        c = kb_index.by_id[cid]
        assert c.kind == "monograph" and "trimethoprim" in c.options


def test_jurisdiction_filter_and_lists(kb_index):
    hits = kb_index.search("nitrofurantoin kidney threshold", 5, {"jurisdiction": ["UK", "US"]})
    assert {kb_index.by_id[c].jurisdiction for c, _ in hits} <= {"UK", "US"}
    assert any(kb_index.by_id[c].doc_id == "guideline-nice-ng109" for c, _ in hits)


def test_bad_filters_are_errors(kb_index):
    with pytest.raises(ValueError, match="unknown filter key"):
        kb_index.search("x", 3, {"colour": "red"})
    with pytest.raises(ValueError, match="unknown option"):
        kb_index.search("x", 3, {"option": "ciprofloxacin"})


def test_retrieve_returns_cited_passages(kb_index):
    passages = retrieve("warfarin with TMP-SMX", k=3)
    assert len(passages) == 3
    top = passages[0]
    assert "warfarin" in top.text.lower()
    assert top.source and top.title and top.version
    assert passages[0].score >= passages[-1].score
    with pytest.raises(ValueError):
        retrieve("   ")


@pytest.mark.parametrize("method", ["rrf", "hybrid"])
def test_top_k_does_not_depend_on_k(kb_index, method):
    # Fusion ranks a fixed depth of each list, so asking for more passages only
    # appends: the first five never change with k (they once did, at depth 4k).
    questions = [q.query for which in ("dev", "blind2") for q in load_eval_queries(which)[::4]]
    for q in questions:
        five = kb_index.search(q, 5, method=method)
        assert kb_index.search(q, 20, method=method)[:5] == five, q


def test_lay_words_and_shorthand_reach_the_clinical_passages(kb_index):
    expanded = expand_query("nursing mother, sx since Tuesday, which abx")
    assert "lactation" in expanded and "symptoms" in expanded and "antibiotic" in expanded
    top = [cid for cid, _ in kb_index.search("she is breastfeeding her newborn - is Macrobid ok?", 5)]
    assert KB + "monograph-nitrofurantoin#pregnancy-and-lactation" in top
    prophylaxis = retrieve("patient wants a standing trimethoprim script to take after intercourse", k=3)
    recurrence = next(p for p in prophylaxis if p.chunk_id == KB + "policy-referral#relapse-and-recurrent-uti-thresholds")
    assert "prophylaxis" in recurrence.text and "referred" in recurrence.text


def _run_isolated(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_cached_query_embeddings_never_import_torch(kb_index):
    query = "is fosfomycin safe under 18"
    expected = kb_index.search(query, 3)  # embeds once; the vector is stored on disk
    result = _run_isolated(
        "import sys, json\n"
        "from clinreason.knowledge.retrieval import get_index\n"
        f"hits = get_index().search({query!r}, 3)\n"
        "print(json.dumps({'ids': [c for c, _ in hits], 'torch': 'torch' in sys.modules,"
        " 'st': 'sentence_transformers' in sys.modules, 'loads': get_index().embedder.model_loads}))\n"
    )
    assert result == {"ids": [c for c, _ in expected], "torch": False, "st": False, "loads": 0}


def test_cached_retrievals_need_neither_chroma_nor_torch(kb_index):
    query = "nitrofurantoin and kidney function"
    expected = [p.chunk_id for p in retrieve(query, k=4, filters={"kind": "monograph"})]
    result = _run_isolated(
        "import sys, json\n"
        "from clinreason.knowledge.retrieval import retrieve\n"
        f"ids = [p.chunk_id for p in retrieve({query!r}, k=4, filters={{'kind': 'monograph'}})]\n"
        "print(json.dumps({'ids': ids, 'chroma': 'chromadb' in sys.modules, 'torch': 'torch' in sys.modules}))\n"
    )
    assert result == {"ids": expected, "chroma": False, "torch": False}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma")
    if exe is None:
        if os.environ.get("CI"):
            raise RuntimeError("the `chroma` server executable (chromadb package) is missing in CI")
        pytest.skip("the `chroma` server executable (from the chromadb package) is not installed")
    port = _free_port()
    proc = subprocess.Popen([exe, "run", "--path", str(tmp_path / "srv"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    if os.environ.get("CI"):
                        raise RuntimeError("Chroma server did not start within 30 s")
                    pytest.skip("Chroma server did not start")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chroma_server_mode(kb_index, chroma_server, tmp_path):
    settings = Settings(data_dir=tmp_path, chroma_url=chroma_server, chroma_collection="server-test")
    idx = KnowledgeIndex(all_chunks(), settings, embedder=kb_index.embedder)
    report = idx.build()
    assert report.embedded == len(all_chunks())
    assert idx.collection.count() == len(all_chunks())
    embedded_hits = kb_index.search("methotrexate bone marrow", 5, method="dense")
    server_hits = idx.search("methotrexate bone marrow", 5, method="dense")
    assert [c for c, _ in server_hits] == [c for c, _ in embedded_hits]
    assert [s for _, s in server_hits] == pytest.approx([s for _, s in embedded_hits], abs=1e-4)
    assert "methotrexate" in idx.by_id[server_hits[0][0]].text.lower()
    assert os.environ.get("CLINREASON_CHROMA_URL") is None  # the default stays embedded
