"""Guard: every line kiosk-tool prints for a person comes from the catalogs (issue #20).

Walks the source of firmware_tools/commands/*.py (and the helpers they print through) and
of the diagnose checks with ast, and looks at every text handed to emit(), print(),
CommandError(), argparse.ArgumentTypeError() and a progress line, and every detail and next
step a check returns. Such a text must be said through the catalogs: a say(t, "id", ...)
call, t("id"), say_text(t, ...), a MessageText("id", ...), or text assembled from those and
from punctuation; an f-string or a bare English literal (an id with its values baked in,
which no catalog can hold) fails the guard and names its file and line. Every message id
found so must have a Chinese translation with the same {placeholders}.
"""

import ast
import re
import string
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiosk.i18n import catalog

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = sorted((ROOT / "firmware_tools" / "commands").glob("*.py"))
TOOL_HELPERS = [
    ROOT / "firmware_tools" / name for name in ("operator_actor.py", "cli.py", "board_sync.py")
] + [  # the simulated cards' and printer's command lines speak as kiosk-tool does
    ROOT / "simulators" / name for name in ("cards.py", "printer_pty.py")
]
CHECKS = [ROOT / "kiosk" / "diagnostics" / name for name in ("checks.py", "runner.py")]

SAYING = {"say", "_say", "t", "say_text", "localized_error", "MessageText"}
WITH_ID = {
    "say": 1,
    "_say": 0,
    "t": 0,
    "MessageText": 0,
}  # where the message id sits among the args
OUTCOMES = {"passed", "warned", "failed", "skipped"}  # kiosk.diagnostics.model
UPDATES = ("bundle", "metadata", "slots", "worker")  # update build, sign, verify, install, serve
CATALOG = ("signed", "store")  # the errors of catalog sign, verify, install
# Errors of the core that kiosk-tool prints as its error line (every command reads --config).
CORE_ERRORS = {
    ROOT / "kiosk" / "config.py": {"ConfigError"},
    ROOT / "kiosk" / "provisioning" / "plan.py": {"ProvisioningError"},
    **{ROOT / "kiosk" / "updates" / f"{name}.py": {"UpdateError"} for name in UPDATES},
    **{ROOT / "kiosk" / "catalog" / f"{name}.py": {"CatalogError"} for name in CATALOG},
}


@dataclass
class Findings:
    sites: int = 0
    message_ids: dict[str, str] = field(default_factory=dict)  # id -> where it was found
    english: list[str] = field(default_factory=list)


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _has_words(text: str) -> bool:
    # The program's name is no word to translate ("kiosk-tool: 错误: ...").
    return re.search(r"[A-Za-z]{2}", text.replace("kiosk-tool", "")) is not None


class SourceFile:
    def __init__(self, path: Path, findings: Findings, root: Path = ROOT) -> None:
        self.path = path
        self.root = root
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.findings = findings
        self.functions = {
            node.name: node
            for node in ast.walk(self.tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self._returning: set[str] = set()
        self._following: set[tuple[int, str]] = set()

    def where(self, node: ast.AST) -> str:
        return f"{self.path.relative_to(self.root)}:{getattr(node, 'lineno', '?')}"

    def record_id(self, node: ast.expr, scope: ast.AST | None = None) -> None:
        for text in self.constants(node, scope):
            self.findings.message_ids.setdefault(text, self.where(node))

    def constants(self, node: ast.expr, scope: ast.AST | None) -> list[str]:
        """The message ids an id argument can be: a literal, either literal of a choice, the
        literals of a table it is looked up in."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return self.constants(node.body, scope) + self.constants(node.orelse, scope)
        if isinstance(node, ast.Dict):
            return [text for value in node.values for text in self.constants(value, scope)]
        if isinstance(node, ast.Subscript):
            return self.constants(node.value, scope)
        if isinstance(node, ast.Name) and scope is not None:
            return [
                text
                for assigned in ast.walk(scope)
                if isinstance(assigned, ast.Assign)
                and any(isinstance(n, ast.Name) and n.id == node.id for n in assigned.targets)
                for text in self.constants(assigned.value, None)
            ]
        return []

    def function_of(self, node: ast.AST) -> ast.AST:
        current = node
        while current in self.parents:
            current = self.parents[current]
            if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                return current
        return self.tree

    def said(self, node: ast.expr, scope: ast.AST) -> bool:
        """Whether the text this expression makes comes from the catalogs."""
        if isinstance(node, ast.Constant):
            return not (isinstance(node.value, str) and _has_words(node.value))
        if isinstance(node, ast.JoinedStr):
            # Its words must be said; what it fills in is data (a number, an id, a path),
            # except a variable, which is followed to the texts assigned to it.
            return all(
                self.said(part.value, scope)
                for part in node.values
                if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name)
            ) and not any(
                isinstance(part, ast.Constant) and _has_words(str(part.value))
                for part in node.values
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.said(node.left, scope) and self.said(node.right, scope)
        if isinstance(node, ast.IfExp):
            return self.said(node.body, scope) and self.said(node.orelse, scope)
        if isinstance(node, ast.BoolOp):
            return all(self.said(value, scope) for value in node.values)
        if isinstance(node, ast.List | ast.Tuple):
            return all(self.said(elt, scope) for elt in node.elts)
        if isinstance(node, ast.ListComp | ast.GeneratorExp):
            return self.said(node.elt, node)
        if isinstance(node, ast.Name):
            return self.said_name(node.id, scope)
        if isinstance(node, ast.Call):
            return self.said_call(node, scope)
        if isinstance(node, ast.Subscript):  # a table of said texts: texts[action]
            return self.said(node.value, scope)
        if isinstance(node, ast.Dict):
            return all(self.said(value, scope) for value in node.values)
        return False

    def said_call(self, node: ast.Call, scope: ast.AST) -> bool:
        name = _name(node.func)
        if name in SAYING:
            position = WITH_ID.get(name)
            if position is not None and len(node.args) > position:
                self.record_id(node.args[position], scope)
                return not isinstance(node.args[position], ast.JoinedStr)
            return True
        if name == "join" and isinstance(node.func, ast.Attribute):
            return self.said(node.func.value, scope) and all(
                self.said(arg, scope) for arg in node.args
            )
        if name == "dumps":  # --json: machine-readable, English keys and values on purpose
            return True
        if name in self.functions and name not in self._returning:
            self._returning.add(name)  # a helper that builds the text: check what it returns
            function = self.functions[name]
            returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value]
            ok = bool(returns) and all(
                r.value is not None and self.said(r.value, function) for r in returns
            )
            self._returning.discard(name)
            return ok
        return False

    def said_name(self, name: str, scope: ast.AST) -> bool:
        key = (id(scope), name)
        if key in self._following:  # text = say(...) + text: its other values decide
            return True
        values: list[ast.expr] = []
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == name for target in node.targets
            ):
                values.append(node.value)
            elif (  # lines.append(...), lines.extend(...)
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("append", "extend")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == name
            ):
                values.extend(node.args)
            elif (
                isinstance(node, ast.AugAssign | ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id == name
                and node.value is not None
            ):
                values.append(node.value)
        if not values:  # a parameter or a loop variable: checked where it is made
            return True
        self._following.add(key)
        try:
            return all(self.said(value, scope) for value in values)
        finally:
            self._following.discard(key)

    def check(self, node: ast.AST, text: ast.expr) -> None:
        self.findings.sites += 1
        scope = self.function_of(node)
        if not self.said(text, scope):
            self.findings.english.append(f"{self.where(text)}: {ast.unparse(text)[:90]}")
        elif isinstance(text, ast.Name) and isinstance(scope, ast.FunctionDef):
            self.check_callers(scope, text.id)

    def check_callers(self, function: ast.FunctionDef, parameter: str) -> None:
        """A helper that prints its parameter (_repo_state(args, repo, text)): what every
        caller in the module hands it must be said."""
        names = [a.arg for a in function.args.args]
        if parameter not in names:
            return
        position = names.index(parameter)
        for call in ast.walk(self.tree):
            if isinstance(call, ast.Call) and _name(call.func) == function.name:
                given = [k.value for k in call.keywords if k.arg == parameter]
                if len(call.args) > position:
                    given.append(call.args[position])
                for text in given:
                    self.check(call, text)

    def record_every_id(self) -> None:
        """Every id said anywhere in the file, values of other lines included, and the
        titles of provisioning steps (plan.add(step_id, title, ...)), said as progress."""
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func) == "plan.add"
                and len(node.args) > 1
            ):
                self.record_id(node.args[1])
            if isinstance(node, ast.Call) and _name(node.func) in WITH_ID:
                position = WITH_ID[_name(node.func)]
                if len(node.args) > position:
                    self.record_id(node.args[position], self.function_of(node))

    def walk_tool(self) -> None:
        self.record_every_id()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name in ("CommandError", "ArgumentTypeError") and node.args:
                self.findings.sites += 1
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    self.record_id(first)
                elif name == "CommandError" or not self.said(first, self.function_of(node)):
                    self.findings.english.append(f"{self.where(first)}: {ast.unparse(first)[:90]}")
            elif name == "emit" and len(node.args) >= 3:
                self.check(node, node.args[2])
            elif name in ("print", "step", "instruct", "SyncResult") and node.args:
                self.check(node, node.args[0])

    def walk_checks(self) -> None:
        self.record_every_id()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            if name in OUTCOMES or name == "CheckResult":
                # passed(detail, next_action, ...); CheckResult(id, title, verdict, detail, next)
                for text in node.args[:2] if name in OUTCOMES else node.args[3:5]:
                    self.findings.sites += 1
                    if not self.said_detail(text, self.function_of(node)):
                        self.findings.english.append(
                            f"{self.where(text)}: {ast.unparse(text)[:90]}"
                        )

    def walk_errors(self, errors: set[str]) -> None:
        self.record_every_id()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and _name(node.func) in errors and node.args:
                text = node.args[0]
                self.findings.sites += 1
                if not self.said_detail(text, self.function_of(node)):
                    self.findings.english.append(f"{self.where(text)}: {ast.unparse(text)[:90]}")

    def said_detail(self, text: ast.expr, scope: ast.AST) -> bool:
        """A detail is a fixed English sentence (its own message id) or said like a line."""
        if isinstance(text, ast.Constant) and isinstance(text.value, str):
            if text.value:
                self.record_id(text)
            return True
        if isinstance(text, ast.IfExp):
            return self.said_detail(text.body, scope) and self.said_detail(text.orelse, scope)
        if isinstance(text, ast.Attribute) and text.attr in ("detail", "next_action"):
            return True  # an Outcome's, passed on: checked where the check made it
        return self.said(text, scope)


@pytest.fixture(scope="module")
def tool() -> Findings:
    findings = Findings()
    for path in [*COMMANDS, *TOOL_HELPERS]:
        SourceFile(path, findings).walk_tool()
    return findings


@pytest.fixture(scope="module")
def core_errors() -> Findings:
    findings = Findings()
    for path, errors in CORE_ERRORS.items():
        SourceFile(path, findings).walk_errors(errors)
    return findings


@pytest.fixture(scope="module")
def checks() -> Findings:
    findings = Findings()
    for path in CHECKS:
        SourceFile(path, findings).walk_checks()
    return findings


def test_every_line_of_the_commands_is_said_through_the_catalogs(tool: Findings) -> None:
    # Not vacuous: the commands print and raise at well over a hundred places.
    assert tool.sites >= 120, tool.sites
    assert len(tool.message_ids) >= 150, len(tool.message_ids)
    assert tool.english == [], "English-only lines:\n" + "\n".join(tool.english)


def test_every_check_detail_and_next_step_is_said_through_the_catalogs(checks: Findings) -> None:
    assert checks.sites >= 100, checks.sites
    assert checks.english == [], "English-only details:\n" + "\n".join(checks.english)


def test_the_cores_errors_the_tool_prints_are_said_through_the_catalogs(
    core_errors: Findings,
) -> None:
    assert core_errors.sites >= 30, core_errors.sites
    assert core_errors.english == [], "English-only errors:\n" + "\n".join(core_errors.english)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_every_message_the_tool_says_has_its_chinese_text(
    tool: Findings, checks: Findings, core_errors: Findings
) -> None:
    chinese = catalog("zh_CN")
    said = {**core_errors.message_ids, **checks.message_ids, **tool.message_ids}
    missing = [f"{where}: {mid!r}" for mid, where in sorted(said.items()) if not chinese.get(mid)]
    assert missing == [], "no zh_CN translation:\n" + "\n".join(missing)
    wrong = [
        f"{where}: {mid!r} -> {chinese[mid]!r}"
        for mid, where in sorted(said.items())
        if _placeholders(chinese[mid]) != _placeholders(mid)
    ]
    assert wrong == [], "placeholders differ:\n" + "\n".join(wrong)


def test_the_guard_catches_an_f_string_and_a_bare_literal(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text(
        "def _x(args, n):\n"
        "    emit(args, {}, f'exported {n} records')\n"
        "    text = 'done'\n"
        "    emit(args, {}, text)\n"
        "    emit(args, {}, say(t, 'exported {n} records', n=n))\n"
        "    raise CommandError(f'cannot read {n}')\n",
        encoding="utf-8",
    )
    findings = Findings()
    SourceFile(source, findings, root=tmp_path).walk_tool()
    assert findings.sites == 4
    assert [line.split(":")[1] for line in findings.english] == ["2", "4", "6"]
    assert findings.message_ids == {"exported {n} records": "bad.py:5"}
