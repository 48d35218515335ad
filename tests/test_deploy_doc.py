"""docs/deploy.md exists, names every setting a deployment of several nodes sets, and names no setting that
does not exist; the README leads to it; neither points anywhere outside the project."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from satchel.settings import Settings

PROJECT = Path(__file__).parent.parent
DEPLOY = PROJECT / "docs" / "deploy.md"
README = PROJECT / "README.md"
# Top-level settings a scale-out deployment sets or must think about; the postgres and s3 blocks come whole.
SCALE_OUT = (
    "database",
    "blob_store",
    "rate_limit_storage",
    "public_url",
    "forwarded_allow_ips",
    "token",
    "blob_grace_seconds",
    "inline_max_bytes",
    "retention_seconds",
)
BLOCKS = ("postgres", "s3")


def _variables() -> set[str]:
    """Every SATCHEL_* variable there is: top-level settings, and engine blocks' fields as BLOCK__FIELD."""
    found = set()
    for name, field in Settings.model_fields.items():
        block = field.annotation
        if isinstance(block, type) and issubclass(block, BaseModel):
            found |= {f"SATCHEL_{name}__{inner}".upper() for inner in block.model_fields}
        else:
            found.add(f"SATCHEL_{name.upper()}")
    return found


def _wanted() -> list[str]:
    wanted = [f"SATCHEL_{name.upper()}" for name in SCALE_OUT]
    for block in BLOCKS:
        model = Settings.model_fields[block].annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        wanted += [f"SATCHEL_{block}__{inner}".upper() for inner in model.model_fields]
    return wanted


def test_the_deploy_doc_names_every_scale_out_setting() -> None:
    text = DEPLOY.read_text()
    wanted = _wanted()
    assert "SATCHEL_S3__PART_BYTES" in wanted
    assert "SATCHEL_POSTGRES__POOL_MAX" in wanted
    assert [v for v in wanted if f"`{v}`" not in text] == []
    assert set(wanted) <= _variables()


def test_the_deploy_doc_names_only_settings_that_exist() -> None:
    named = set(re.findall(r"\bSATCHEL_[A-Z0-9_]*[A-Z0-9]", DEPLOY.read_text()))
    assert named
    assert sorted(named - _variables()) == []


def test_the_environment_file_sets_what_every_node_needs() -> None:
    """The worked example's one file for every node sets each setting the text asks of every node (it lacked
    forwarded_allow_ips, which the nginx step asks for: behind the proxy every client then counted as it)."""
    text = DEPLOY.read_text()
    block = re.search(r"\*\*3\. One environment file.*?```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None
    set_there = set(re.findall(r"^(SATCHEL_[A-Z0-9_]+)=", block.group(1), re.MULTILINE))
    needed = {"DATABASE", "BLOB_STORE", "RATE_LIMIT_STORAGE", "PUBLIC_URL", "FORWARDED_ALLOW_IPS", "TOKEN"}
    assert {f"SATCHEL_{name}" for name in needed} - set_there == set()


def test_the_nginx_example_streams_large_bodies() -> None:
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOY.read_text(), re.DOTALL)
    assert len(blocks) == 1
    for directive in (
        "client_max_body_size",
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_read_timeout",
        "proxy_send_timeout",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
    ):
        assert directive in blocks[0], directive
    # The Console compares a form's Origin with Host: the client's Host must go on with its port.
    assert "proxy_set_header Host $http_host;" in blocks[0]


def test_the_readme_leads_to_the_deploy_doc() -> None:
    readme = README.read_text()
    assert "](docs/deploy.md)" in readme
    for words in ("## Scale out", "`satchel migrate`", "--database", "--blob-store"):
        assert words in readme, words


def test_links_stay_inside_the_project() -> None:
    for doc in (README, DEPLOY):
        text = doc.read_text()
        assert "../shared" not in text, doc
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(PROJECT.resolve()), (doc, target)
            assert path.exists(), (doc, target)
