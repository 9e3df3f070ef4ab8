"""Inline PTX: translate the ``asm`` statements of a preprocessed kernel into C++ the emulator runs.

GCC would hand an ``asm volatile("mma.sync...")`` to the x86 assembler. Instead, after ``g++ -E`` (so
macros, ``#include``\\ d helpers and ``#if`` inside the template are resolved), each asm statement in user
code becomes a ``do { ... } while (0)`` block on the statement's first line (newlines kept, so later line
numbers do not move):

* every operand is copied once into a local "register" (``__emu_r<N>``): its bit pattern for ``"r"``/``"f"``
  (32 bits) and ``"l"`` (64 bits), its value for ``"n"``; ``"+"`` outputs start from the lvalue;
* each PTX instruction of the template becomes a call into the runtime (``emu_abi.h``) or a few lines of
  C++ on those registers; ``{ .reg .pred p; setp... p, ...; @p instr; }`` blocks are understood;
* outputs are stored back to their lvalues at the end, so all inputs are read before any output changes.

An instruction, constraint or operand form the emulator does not know is a ``CompileError`` naming the
instruction and the file:line, never an assembler error or a silent no-op. The supported set, and the PTX
ISA section each follows, is listed in docs/emulator.md and ``SUPPORTED`` below.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import CompileError
from .source_rewrite import mask, matching_bracket

#: What the emulator runs, for messages (the PTX ISA section of each in docs/emulator.md).
SUPPORTED = (
    "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32",
    "mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32",
    "ldmatrix.sync.aligned.m8n8.{x1,x2,x4}{.trans}{.shared{::cta}}.b16",
    "cp.async.ca.shared{::cta}.global{.L2::64B|128B|256B} (4, 8, 16 bytes, optional src-size)",
    "cp.async.cg.shared{::cta}.global{.L2::64B|128B|256B} (16 bytes, optional src-size)",
    "cp.async.commit_group", "cp.async.wait_group N", "cp.async.wait_all",
    "cvt.rna{.satfinite}.tf32.f32",
    "setp.{eq,ne}.b32 and setp.{eq,ne,lt,le,gt,ge}.{u32,s32} on a .reg .pred, with @p / @!p guards",
)

_ASM = re.compile(r"\b(?:asm|__asm__|__asm)\b")
_QUALIFIERS = re.compile(r"\s*\b(?:volatile|__volatile__|__volatile|inline|goto)\b")
_MARKER = re.compile(r'^#\s*(\d+)\s+"((?:\\.|[^"\\])*)"([ \d]*)$', re.M)
_STRING = re.compile(r'"((?:\\.|[^"\\\n])*)"')
_OPERAND = re.compile(r'(?s)\s*(?:\[\s*(?P<name>\w+)\s*\])?\s*"(?P<cons>[^"]*)"\s*\((?P<expr>.*)\)\s*')
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]+|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "?": "?", "a": "\a",
                   "b": "\b", "f": "\f", "v": "\v"}
_REG_TYPE = {"r": "unsigned int", "f": "unsigned int", "l": "unsigned long long", "n": "long long"}
_CONVERT = {"r": "::__emu::ptx::r32", "f": "::__emu::ptx::f32", "l": "::__emu::ptx::l64", "n": "(long long)"}
_MMA = {
    "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32": "EMU_W_MMA_TF32",
    "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32": "EMU_W_MMA_F16",
    "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32": "EMU_W_MMA_BF16",
}
_LDMATRIX = re.compile(r"ldmatrix\.sync\.aligned\.m8n8\.x(?P<num>[124])(?P<trans>\.trans)?"
                       r"(?P<space>\.shared(?:::cta)?)?\.b16")
_CP_ASYNC = re.compile(r"cp\.async\.(?P<cache>ca|cg)\.shared(?:::cta)?\.global(?:\.L2::(?:64|128|256)B)?")
_SETP = re.compile(r"setp\.(?P<cmp>eq|ne|lt|le|gt|ge)\.(?P<type>b32|u32|s32)")
_CMP = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


@dataclass
class _Operand:
    index: int
    constraint: str  # the letter: r, f, l or n
    expr: str
    output: bool
    readable: bool  # inputs and "+" outputs

    @property
    def reg(self) -> str:
        return f"__emu_r{self.index}"


@dataclass
class _Asm:
    template: str
    operands: list[_Operand]
    where: str  # "file:line" for messages
    preds: set[str] = field(default_factory=set)


def _position_to_location(text: str, markers: list[tuple[int, int, str, bool]], pos: int) -> tuple[str, int, bool]:
    """(file, line, in a system header) of offset ``pos`` of preprocessed ``text``."""
    file, line, start, system = "<source>", 1, 0, False
    for offset, mline, mfile, msys in markers:
        if offset > pos:
            break
        file, line, start, system = mfile, mline, text.index("\n", offset) + 1, msys
    return file, line + text.count("\n", start, pos), system


def _decode(literal: str) -> str:
    def one(m: re.Match) -> str:
        e = m.group(1)
        if e[0] == "x":
            return chr(int(e[1:], 16))
        if e[0] in "01234567":
            return chr(int(e, 8))
        return _SIMPLE_ESCAPES.get(e, e)

    return _ESCAPE.sub(one, literal)


def _split_top(masked: str, sep: str) -> list[tuple[int, int]]:
    """Spans of ``masked`` separated by ``sep`` characters outside brackets."""
    spans, depth, start = [], 0, 0
    for i, c in enumerate(masked):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(masked)))
    return spans


def translate(preprocessed: str) -> str:
    """Replace every asm statement of user code in ``preprocessed`` (``g++ -E`` output) by emulator code.

    Raises ``CompileError`` naming the file:line for an asm statement the emulator cannot run.
    """
    if not _ASM.search(preprocessed):
        return preprocessed
    masked = mask(preprocessed)
    markers = [(m.start(), int(m.group(1)), _decode(m.group(2)), "3" in m.group(3).split())
               for m in _MARKER.finditer(preprocessed)]
    edits = []
    for m in _ASM.finditer(masked):
        file, line, system = _position_to_location(preprocessed, markers, m.start())
        if system:
            continue  # asm labels of system headers (glibc's __asm__("name")): not statements
        where = f"{file}:{line}"
        pos = m.end()
        q = _QUALIFIERS.match(masked, pos)
        while q:
            pos = q.end()
            q = _QUALIFIERS.match(masked, pos)
        while pos < len(masked) and masked[pos].isspace():
            pos += 1
        close = matching_bracket(masked, pos, "()") if pos < len(masked) and masked[pos] == "(" else -1
        if close < 0:
            raise CompileError(f"{where}: cannot parse this asm statement (expected asm volatile(\"...\" : ...))")
        code = _statement(preprocessed[pos + 1:close], masked[pos + 1:close], where)
        edits.append((m.start(), close + 1, code + "\n" * preprocessed.count("\n", m.start(), close + 1)))
    out = preprocessed
    for start, end, text in reversed(edits):
        out = out[:start] + text + out[end:]
    return out


def _statement(inner: str, masked_inner: str, where: str) -> str:
    sections = [(inner[a:b], masked_inner[a:b]) for a, b in _split_top(masked_inner, ":")]
    if len(sections) > 4:
        raise CompileError(f"{where}: asm goto (labels) is not supported by the emulator")
    template_text = sections[0][0]
    literals = _STRING.findall(template_text)
    if _STRING.sub("", template_text).strip():
        raise CompileError(f"{where}: the template of an asm statement must be string literals, got "
                           f"{' '.join(template_text.split())!r}")
    template = "".join(_decode(s) for s in literals)
    operands: list[_Operand] = []
    for k, output in ((1, True), (2, False)):
        if k >= len(sections) or not sections[k][1].strip():
            continue
        text, msk = sections[k]
        for a, b in _split_top(msk, ","):
            operands.append(_operand(text[a:b], len(operands), output, where))
    asm = _Asm(template=template, operands=operands, where=where)
    body = _template_code(asm)
    decls, stores = [], []
    for op in operands:
        ctype = _REG_TYPE[op.constraint]
        if op.output:
            init = f"{_CONVERT[op.constraint]}({op.expr})" if op.readable else "0"
            decls.append(f"{ctype} {op.reg} = {init};")
            stores.append(f"::__emu::ptx::store<{8 if op.constraint == 'l' else 4}>({op.expr}, {op.reg});")
        else:
            decls.append(f"const {ctype} {op.reg} = {_CONVERT[op.constraint]}({op.expr}); (void){op.reg};")
    return "do { " + " ".join(decls + body + stores) + " } while (0)"


def _operand(text: str, index: int, output: bool, where: str) -> _Operand:
    m = _OPERAND.fullmatch(text)
    if not m:
        raise CompileError(f"{where}: cannot parse asm operand {' '.join(text.split())!r}")
    if m.group("name"):
        raise CompileError(f"{where}: named asm operands ([{m.group('name')}]) are not supported by nvcc; use %N")
    cons = m.group("cons").replace("&", "")
    rw = cons[:1] if cons[:1] in "=+" else ""
    letter = cons[len(rw):]
    if output and not rw:
        raise CompileError(f"{where}: asm output operand {index} has constraint {cons!r} without '=' or '+'")
    if not output and rw:
        raise CompileError(f"{where}: asm input operand {index} has the output constraint {cons!r}")
    allowed = "rfl" if output else "rfln"
    if letter not in allowed or len(letter) != 1:
        raise CompileError(f"{where}: asm operand {index} has constraint {m.group('cons')!r}; the emulator supports "
                           f"{', '.join(repr(('=' if output else '') + c) for c in allowed)}"
                           + (" (and '+' for read-write)" if output else ""))
    return _Operand(index=index, constraint=letter, expr=m.group("expr").strip(),
                    output=output, readable=not output or rw == "+")


# ---------------------------------------------------------------- the template

def _instructions(asm: _Asm) -> list[str]:
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", asm.template, flags=re.S).replace("%%", "\0")  # %% is a literal %
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace() or c == ";":
            i += 1
        elif c in "{}":  # a scope: only where a statement starts (vector operands {%0, %1} stay inside)
            out.append(c)
            i += 1
        else:
            end = text.find(";", i)
            end = len(text) if end < 0 else end
            out.append(" ".join(text[i:end].split()).replace("\0", "%"))
            i = end + 1
    return out


def _template_code(asm: _Asm) -> list[str]:
    code = []
    for instr in _instructions(asm):
        if instr in "{}":
            code.append(instr)
        elif instr.startswith(".reg"):
            m = re.fullmatch(r"\.reg \.pred (\w+)", instr)
            if not m:
                raise CompileError(f"{asm.where}: inline PTX `{instr}`: only `.reg .pred name` declarations are "
                                   "supported by the emulator")
            asm.preds.add(m.group(1))
            code.append(f"bool __emu_p_{m.group(1)} = false; (void)__emu_p_{m.group(1)};")
        else:
            code.append(_instruction(asm, instr))
    if not code:
        code.append("__atomic_signal_fence(__ATOMIC_SEQ_CST);")  # asm volatile("" ::: "memory")
    return code


class _Instr:
    """One PTX instruction with its operands resolved against the asm statement's operand list."""

    def __init__(self, asm: _Asm, text: str) -> None:
        self.asm = asm
        self.text = text
        opcode, _, rest = text.partition(" ")
        self.opcode = opcode
        self.args = [rest[a:b].strip() for a, b in _split_top(rest, ",")] if rest.strip() else []

    def error(self, problem: str) -> CompileError:
        return CompileError(f"{self.asm.where}: inline PTX `{self.text}`: {problem}")

    def want(self, count: int) -> None:
        if len(self.args) != count:
            raise self.error(f"expected {count} operands, got {len(self.args)}")

    def ref(self, token: str) -> _Operand:
        token = token.strip()
        m = re.fullmatch(r"%(\d+)", token)
        if not m:
            raise self.error(f"operand {token!r} must be an asm operand %N")
        n, ops = int(m.group(1)), self.asm.operands
        if n >= len(ops):
            raise self.error(f"%{n} names no operand (the statement has {len(ops)})")
        return ops[n]

    def write(self, token: str, letters: str) -> str:
        op = self.ref(token)
        if not op.output:
            raise self.error(f"{token.strip()} is written but is an input operand (declare it \"={letters[0]}\")")
        if op.constraint not in letters:
            raise self.error(f"{token.strip()} needs constraint \"={letters[0]}\", got \"={op.constraint}\"")
        return op.reg

    def read(self, token: str, letters: str) -> str:
        token = token.strip()
        if "n" in letters and re.fullmatch(r"-?(?:0[xX][0-9a-fA-F]+|\d+)", token):
            return f"{int(token, 0)}LL"
        op = self.ref(token)
        if not op.readable:
            raise self.error(f"{token} is read but is a write-only output (\"=\"); use \"+\" or an input")
        if op.constraint not in letters:
            raise self.error(f"{token} needs constraint " + " or ".join(f'"{c}"' for c in letters)
                             + f", got \"{op.constraint}\"")
        return op.reg

    def vector(self, token: str, count: int) -> list[str]:
        token = token.strip()
        if not (token.startswith("{") and token.endswith("}")):
            raise self.error(f"operand {token!r} must be a vector {{...}} of {count} registers")
        items = [t.strip() for t in token[1:-1].split(",")]
        if len(items) != count:
            raise self.error(f"operand {token!r} must hold {count} registers, it holds {len(items)}")
        return items

    def address(self, token: str, letters: str) -> str:
        m = re.fullmatch(r"\[\s*([^\]+]+?)\s*(?:\+\s*(-?(?:0[xX][0-9a-fA-F]+|\d+))\s*)?\]", token.strip())
        if not m:
            raise self.error(f"operand {token.strip()!r} must be an address [%N] or [%N+offset]")
        base = self.read(m.group(1), letters)
        offset = int(m.group(2), 0) if m.group(2) else 0
        return f"((unsigned long long){base} + {offset}ULL)" if offset else f"(unsigned long long){base}"


def _instruction(asm: _Asm, text: str) -> str:
    guard = ""
    m = re.match(r"@(!?)(\w+)\s+(.*)", text)
    if m:
        if m.group(2) not in asm.preds:
            raise CompileError(f"{asm.where}: inline PTX `{text}`: guard predicate {m.group(2)!r} is not declared "
                               "(.reg .pred)")
        guard = f"if ({'!' if m.group(1) else ''}__emu_p_{m.group(2)}) "
        text = m.group(3)
    ins = _Instr(asm, text)
    return guard + "{ " + _emit(ins) + " }"


def _emit(ins: _Instr) -> str:
    op = ins.opcode
    site = "__FILE__, __LINE__"
    if op in _MMA:
        ins.want(4)
        d = [ins.write(t, "f") for t in ins.vector(ins.args[0], 4)]
        a = [ins.read(t, "r") for t in ins.vector(ins.args[1], 4)]
        b = [ins.read(t, "r") for t in ins.vector(ins.args[2], 2)]
        c = [ins.read(t, "f") for t in ins.vector(ins.args[3], 4)]
        return (f"const unsigned int __emu_i[10] = {{{', '.join(a + b + c)}}}; unsigned int __emu_o[4]; "
                f"__emu_mma({_MMA[op]}, __emu_i, __emu_o, {site}); "
                + " ".join(f"{r} = __emu_o[{i}];" for i, r in enumerate(d)))
    m = _LDMATRIX.fullmatch(op)
    if m:
        ins.want(2)
        num = int(m.group("num"))
        d = [ins.write(t, "r") for t in ins.vector(ins.args[0], num)]  # ptxas wants {%0} even for .x1
        generic = 0 if m.group("space") else 1
        addr = ins.address(ins.args[1], "rl" if not generic else "l")
        return (f"unsigned int __emu_o[4]; __emu_ldmatrix({num}, {1 if m.group('trans') else 0}, {generic}, {addr}, "
                f"__emu_o, {site}); " + " ".join(f"{r} = __emu_o[{i}];" for i, r in enumerate(d)))
    m = _CP_ASYNC.fullmatch(op)
    if m:
        if len(ins.args) not in (3, 4):
            raise ins.error("expected [dst], [src], cp-size{, src-size} (cache-policy and ignore-src operands "
                            "are not supported by the emulator)")
        dst = ins.address(ins.args[0], "rl")
        src = ins.address(ins.args[1], "l")
        size = ins.read(ins.args[2], "n")
        if size.endswith("LL") and int(size[:-2]) not in ((16,) if m.group("cache") == "cg" else (4, 8, 16)):
            raise ins.error(f"cp-size must be {'16 for .cg' if m.group('cache') == 'cg' else '4, 8 or 16'}")
        src_size = ins.read(ins.args[3], "rn") if len(ins.args) == 4 else size
        cg = 1 if m.group("cache") == "cg" else 0
        return (f"__emu_cp_async({dst}, (const void *)(unsigned long long)({src}), (int)({size}), "
                f"(long long)(int)({src_size}), {cg}, {site});")
    if op == "cp.async.commit_group":
        ins.want(0)
        return "__emu_cp_async_commit();"
    if op == "cp.async.wait_group":
        ins.want(1)
        return f"__emu_cp_async_wait({ins.read(ins.args[0], 'n')}, {site});"
    if op == "cp.async.wait_all":
        ins.want(0)
        return f"__emu_cp_async_wait(-1, {site});"
    if op in ("cvt.rna.tf32.f32", "cvt.rna.satfinite.tf32.f32"):
        ins.want(2)
        d = ins.write(ins.args[0], "r")
        a = ins.read(ins.args[1], "f")
        return f"{d} = ::__emu::ptx::cvt_rna_tf32({a}, {'true' if 'satfinite' in op else 'false'});"
    m = _SETP.fullmatch(op)
    if m:
        ins.want(3)
        if m.group("type") == "b32" and m.group("cmp") not in ("eq", "ne"):
            raise ins.error("bit-size types (.b32) allow only eq and ne (PTX ISA 9.7.6.2)")
        p = ins.args[0].strip()
        if p not in ins.asm.preds:
            raise ins.error(f"{p!r} is not a declared predicate (.reg .pred {p})")
        ctype = "int" if m.group("type") == "s32" else "unsigned int"
        a, b = (f"({ctype})({ins.read(t, 'rn')})" for t in ins.args[1:])
        return f"__emu_p_{p} = {a} {_CMP[m.group('cmp')]} {b};"
    raise ins.error(f"instruction {op!r} is not supported by the emulator (it runs: {'; '.join(SUPPORTED)})")
