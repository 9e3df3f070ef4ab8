"""Find the ``extern "C" __global__`` kernels of a preprocessed translation unit and their parameters.

Parameter *types* are checked from what the compiler reports (see shim.h, ``__emu::describe``); the
parse here supplies names, parameter text for messages and ``__launch_bounds__``.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|[A-Za-z_]\w*|\d[\w.]*|::|\S')
_KEYWORDS = {
    "const", "volatile", "__restrict__", "__restrict", "restrict", "unsigned", "signed", "int", "float",
    "double", "char", "short", "long", "bool", "void", "struct", "__grid_constant__",
}


@dataclass
class Param:
    """One kernel parameter as written: ``text`` is the declaration, ``name`` its identifier."""

    name: str
    text: str


@dataclass
class KernelSignature:
    """An ``extern "C" __global__`` kernel found in the source."""

    name: str
    qualified: str  # with enclosing namespaces, for the generated trampoline
    params: list[Param] = field(default_factory=list)
    launch_bounds: int | None = None  # maxThreadsPerBlock from __launch_bounds__, when it is a constant


def _tokens(text: str) -> list[str]:
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]  # line markers, pragmas
    return _TOKEN.findall("\n".join(lines))


def _skip_balanced(toks: list[str], i: int) -> int:
    """toks[i] is '(' or '['; return the index just past its match."""
    opening = toks[i]
    closing = ")" if opening == "(" else "]"
    depth = 0
    while i < len(toks):
        if toks[i] == opening:
            depth += 1
        elif toks[i] == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _const_int(tokens: list[str]) -> int | None:
    """Evaluate a small integer constant expression (e.g. ``(32 / 4) * (32 / 4)``) with C semantics, or None."""
    text = re.sub(r"(?<=\d)[uUlL]+\b", "", " ".join(tokens))
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, (ast.Div, ast.FloorDiv)) and b:
                q = abs(a) // abs(b)  # C truncates toward zero
                return q if (a >= 0) == (b >= 0) else -q
            if isinstance(node.op, ast.LShift):
                return a << b
            if isinstance(node.op, ast.RShift):
                return a >> b
        raise ValueError(ast.dump(node))

    try:
        return ev(tree)
    except (ValueError, RecursionError):
        return None


def _split_params(toks: list[str]) -> list[list[str]]:
    params, cur, depth = [], [], 0
    for t in toks:
        if t in "([<":
            depth += 1
        elif t in ")]>":
            depth -= 1
        if t == "," and depth == 0:
            params.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        params.append(cur)
    if len(params) == 1 and params[0] in (["void"], []):
        return []
    return params


def _param(toks: list[str], index: int) -> Param:
    text = " ".join(toks).replace(" *", "*").replace("* ", "* ").replace(" ,", ",")
    core = toks[:toks.index("[")] if "[" in toks else toks
    idents = [t for t in core if re.fullmatch(r"[A-Za-z_]\w*", t)]
    name = f"arg{index}"
    if idents and idents[-1] not in _KEYWORDS and (len(idents) >= 2 or "*" in core or "&" in core):
        name = idents[-1]
    return Param(name=name, text=text)


def _header_kernel(header: list[str], namespaces: list[str], in_extern_c: bool) -> KernelSignature | None:
    if "__global__" not in header or "template" in header:
        return None
    extern_c = in_extern_c or any(a == "extern" and b == '"C"' for a, b in zip(header, header[1:]))
    if not extern_c:
        return None
    bounds = None
    i = 0
    while i < len(header):
        t = header[i]
        if t in ("__launch_bounds__", "__attribute__", "__declspec", "alignas", "__maxnreg__") and \
                i + 1 < len(header) and header[i + 1] == "(":
            end = _skip_balanced(header, i + 1)
            if t == "__launch_bounds__":
                args = _split_params(header[i + 2:end - 1])
                bounds = _const_int(args[0]) if args else None
            i = end
            continue
        if re.fullmatch(r"[A-Za-z_]\w*", t) and i + 1 < len(header) and header[i + 1] == "(":
            end = _skip_balanced(header, i + 1)
            params = [_param(p, k) for k, p in enumerate(_split_params(header[i + 2:end - 1]))]
            qualified = "::".join(namespaces + [t])
            return KernelSignature(name=t, qualified=qualified, params=params, launch_bounds=bounds)
        i += 1
    return None


def find_kernels(preprocessed: str) -> list[KernelSignature]:
    """Return the ``extern "C" __global__`` kernels *defined* in a preprocessed translation unit."""
    toks = _tokens(preprocessed)
    kernels: dict[str, KernelSignature] = {}
    scopes: list[tuple[str, str]] = []  # ("extern_c", "") or ("namespace", name)
    start = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == ";":
            start = i + 1
        elif t == "}":
            if scopes:
                scopes.pop()
            start = i + 1
        elif t == "{":
            header = toks[start:i]
            if header == ["extern", '"C"']:
                scopes.append(("extern_c", ""))
                start = i + 1
            elif header[:1] == ["namespace"] or header[:2] == ["inline", "namespace"]:
                names = [h for h in header if h not in ("inline", "namespace", "::")]
                scopes.append(("namespace", "::".join(names)))
                start = i + 1
            else:
                namespaces = [n for kind, n in scopes if kind == "namespace" and n]
                in_c = any(kind == "extern_c" for kind, _ in scopes)
                sig = _header_kernel(header, namespaces, in_c)
                if sig is not None and sig.name not in kernels:
                    kernels[sig.name] = sig
                # Skip the body (function, struct, initializer) in one go.
                depth = 0
                while i < len(toks):
                    if toks[i] == "{":
                        depth += 1
                    elif toks[i] == "}":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
                start = i + 1
        i += 1
    return list(kernels.values())
