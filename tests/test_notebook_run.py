"""The lab notebook runs top to bottom in a real Jupyter kernel, and its HTML export draws.

The instructor's notebook (solutions filled in, public and hidden checks)
and the student release (stubs) are each executed once per module with
`nbclient` and the `python3` kernel of this interpreter's environment. With
the solutions every check scores the cell's full points and every figure
renders. With the stubs the notebook still reaches its last cell and every
exercise reports "not implemented yet".

The executed solutions notebook is then exported to HTML by nbconvert and
opened in headless Chromium (Debian's `chromium`, driven by playwright).
Each plotly figure must draw one bar per token. The page must log no
console error or page error, and request nothing outside the file.
"""

import json
import logging
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.plugin import EXERCISES
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

SOLUTION_NOTEBOOK = REPO_ROOT / "solutions" / "lab3_transformer.ipynb"
STUDENT_NOTEBOOK = REPO_ROOT / "exercises" / "lab3_transformer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# The exported page's own template: nbconvert's "lab" template without the
# require.js and MathJax scripts that it loads from a CDN (the notebook uses neither).
OFFLINE_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""
# Run in the kernel before the first cell: figures use the kit's renderer,
# which embeds plotly.js once and loads nothing from the network.
KERNEL_SETUP = "import lm_support.figures; lm_support.figures.use_offline_renderer()"
CELL_TIMEOUT_SECONDS = 900


def _execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(workdir)}},
        extra_arguments=[f"--IPKernelApp.exec_lines={json.dumps([KERNEL_SETUP])}"],
    )
    started = time.monotonic()
    client.execute()
    logger.info("Executed %s in %.0f s (load average %s)", path.name, time.monotonic() - started,
                os.getloadavg())
    return notebook


@pytest.fixture(scope="module")
def kernel_environment(tmp_path_factory):
    """Point the kernel's temporary files (the grading process's log) at a fresh folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("kernel-tmp")))
        yield


@pytest.fixture(scope="module")
def solved(kernel_environment, tmp_path_factory):
    return _execute(SOLUTION_NOTEBOOK, tmp_path_factory.mktemp("solved"))


@pytest.fixture(scope="module")
def stubs(kernel_environment, tmp_path_factory):
    return _execute(STUDENT_NOTEBOOK, tmp_path_factory.mktemp("stubs"))


def _text(outputs) -> str:
    parts = []
    for output in outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
    return "\n".join(parts)


def _test_cells(notebook):
    return {cell.metadata["nbgrader"]["grade_id"][len("test_"):]: cell for cell in notebook.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")}


def _figures(notebook):
    """Return (cell index, plotly figure JSON) for each figure drawn in the outputs."""
    figures = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html", "") if "data" in output else ""
            for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{', html, re.DOTALL):
                figures.append((index, json.loads(match[1])))
    return figures


def _errors(notebook):
    return [(index, output) for index, cell in enumerate(notebook.cells) for output in cell.get("outputs", [])
            if output.output_type == "error" or (output.output_type == "stream" and output.name == "stderr"
                                                 and "Traceback" in output.text)]


def test_solutions_run_without_errors(solved):
    assert _errors(solved) == []


def test_solutions_score_full_points(solved):
    cells = _test_cells(solved)
    assert sorted(cells) == sorted(EXERCISES)
    for name, cell in cells.items():
        results = [output for output in cell.outputs if output.output_type == "execute_result"]
        assert len(results) == 1, name
        assert float(results[0].data["text/plain"]) == float(cell.metadata["nbgrader"]["points"]), name


def test_solutions_checks_print_pass(solved):
    for name, cell in _test_cells(solved).items():
        text = _text(cell.outputs)
        assert re.search(rf"^PASS {name}: (all \d+|the) public checks? pass", text, re.MULTILINE), text
        assert re.search(rf"^PASS {name}: (all \d+|the) hidden checks? pass", text, re.MULTILINE), text
        assert "FAIL" not in text, name
        html = "".join(output.data.get("text/html", "") for output in cell.outputs if "data" in output)
        assert f"PASS {name}: " in html, name


def test_solutions_demos_print_results(solved):
    text = "\n".join(_text(cell.outputs) for cell in solved.cells if cell.cell_type == "code")
    assert "not implemented yet" not in text
    assert "The probabilities sum to 1.0000" in text
    assert "Models on this machine: Gemma-270M" in text
    for seed in range(4):
        assert f"key {seed}: Jide was thirsty so she went looking for" in text


def test_solutions_greedy_text_repeats(solved):
    greedy = [cell for cell in solved.cells if "do_sample=False" in cell.source and "greedy_text" in cell.source]
    assert len(greedy) == 1
    text = _text(greedy[0].outputs)
    words = text.split()
    # Some run of four words comes back later in the greedy text.
    grams = [" ".join(words[i:i + 4]) for i in range(len(words) - 3)]
    assert len(set(grams)) < len(grams), text


def test_solutions_draw_every_figure(solved):
    figures = _figures(solved)
    shows = [index for index, cell in enumerate(solved.cells) if ".show()" in cell.source]
    assert shows, "the notebook shows no figure"
    assert sorted({index for index, _ in figures}) == shows
    for _, data in figures:
        bars = [trace for trace in data if trace["type"] == "bar"]
        assert bars and all(len(trace["x"]) > 0 for trace in bars)


def test_stubs_run_to_the_end(stubs):
    assert _errors(stubs) == []
    last_code = [cell for cell in stubs.cells if cell.cell_type == "code"][-1]
    assert last_code.get("execution_count") is not None


def test_stubs_report_not_implemented(stubs):
    cells = _test_cells(stubs)
    assert sorted(cells) == sorted(EXERCISES)
    for name, cell in cells.items():
        text = _text(cell.outputs)
        assert f"{name} is not implemented yet (0 of" in text, name
        results = [output for output in cell.outputs if output.output_type == "execute_result"]
        assert float(results[0].data["text/plain"]) == 0, name


def test_stub_demos_say_not_implemented(stubs):
    demos = [cell for cell in stubs.cells if cell.cell_type == "code" and "skip_if_not_implemented()" in cell.source
             and "import" not in cell.source]
    assert demos
    for cell in demos:
        assert "is not implemented yet: write it above and run this cell again." in _text(cell.outputs), cell.source


@pytest.fixture(scope="module")
def exported_html(solved, tmp_path_factory):
    from nbconvert import HTMLExporter

    folder = tmp_path_factory.mktemp("export")
    template = folder / "offline.html.j2"
    template.write_text(OFFLINE_TEMPLATE)
    exporter = HTMLExporter(template_name="lab", template_file=str(template))
    body, _ = exporter.from_notebook_node(solved)
    path = folder / "lab3_transformer.html"
    path.write_text(body, encoding="utf-8")
    return path


def test_export_has_no_external_scripts(exported_html):
    text = exported_html.read_text()
    assert re.findall(r'<script[^>]+src="https?://[^"]*"', text) == []
    assert re.findall(r'<link[^>]+href="https?://[^"]*"', text) == []


def test_export_draws_bars_in_chromium(exported_html, solved, tmp_path):
    from playwright.sync_api import sync_playwright

    expected = [[len(trace["x"]) for trace in data if trace["type"] == "bar"] for _, data in _figures(solved)]
    assert expected and all(counts and all(counts) for counts in expected), expected
    console_errors, page_errors, external = [], [], []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file://", "data:", "blob:", "about:")):
            request_route.continue_()
        else:
            external.append(url)
            request_route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True,
        )
        try:
            page = browser.new_page()
            page.route("**/*", route)
            page.on("console", lambda message: console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(exported_html.as_uri(), wait_until="load")
            page.wait_for_function(
                f"document.querySelectorAll('.plotly-graph-div .barlayer').length >= {len(expected)}",
                timeout=60_000,
            )
            drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(
                figure => Array.from(figure.querySelectorAll('.barlayer .trace')).map(
                    trace => trace.querySelectorAll('.point').length))""")
        finally:
            browser.close()

    assert drawn == expected
    assert console_errors == []
    assert page_errors == []
    assert external == []
