#!/usr/bin/env python3
"""Runs the C# cells of a Polyglot (.NET Interactive) notebook without the kernel.

Why: dotnet-interactive is not available everywhere (it is not served on the machine these notebooks were written on),
but the .NET 10 SDK runs a single .cs file as an app (`dotnet run app.cs`). This script turns a notebook's C# cells
into such a file-based app and runs it, so anyone with the SDK can execute (or just compile) a notebook's code.

    python3 notebooks/run_notebook.py notebooks/quickstart.ipynb                   # run, print the output per cell
    python3 notebooks/run_notebook.py notebooks/quickstart.ipynb --write-outputs   # ... and store it in the notebook
    python3 notebooks/run_notebook.py notebooks/quickstart.ipynb --check           # compile only (no run)
    python3 notebooks/run_notebook.py notebooks/quickstart.ipynb --emit app.cs     # only write the app

How a notebook becomes an app (the translation is what the kernel would do, written out):
  * `#r "<folder>/bin/<Configuration>/<tfm>/<Name>.dll"` becomes `#:project <folder>/<Name>.csproj` when that project
    exists above the DLL (the build then compiles it, in Release); further `#r` DLLs from the same output folder
    come with that project and are dropped. `#r "nuget: Id, Version"` becomes `#:package Id@Version`.
  * `using` directives move to the top of the file; top-level type declarations (class/record/struct/interface/enum
    at column 0) move to the end, after the statements, as C# requires outside scripts.
  * Each code cell is preceded by a marker line on stdout so the output can be split back per cell, and by a
    comment `// ---- cell N ----` in the app (N = index in the notebook's cells) to map compiler errors back.
  * The app runs with the notebook's folder as its working directory, as the kernel does, so relative paths in the
    cells mean the same thing in both.
  * Other magic commands (`#!...`, `#i`) are not supported: the script stops and names the cell.
Cells that end in a bare expression (which the kernel would display) do not compile as an app: write
`Console.WriteLine(...)` instead. Only the Python standard library is used.
"""
import argparse
import json
import os
import re
import subprocess
import sys

MARKER = "\u241e@cell "          # printed before each code cell's output: <MARKER><index in notebook cells>
USING = re.compile(r"^\s*(global\s+)?using\s+(static\s+)?[A-Za-z_][\w.]*\s*;\s*$|^\s*using\s+\w+\s*=\s*[\w.<>,\s]+;\s*$")
TYPE_DECL = re.compile(r"^((public|internal|private|sealed|static|abstract|partial|file|readonly|unsafe)\s+)*"
                       r"(class|record|struct|interface|enum)\b")
REF_DLL = re.compile(r'^\s*#r\s+"(?!nuget:)([^"]+\.dll)"\s*$')
REF_NUGET = re.compile(r'^\s*#r\s+"nuget:\s*([^,"\s]+)\s*(?:,\s*([^"\s]+))?\s*"\s*$')


class NotebookError(Exception):
    pass


def cell_language(cell, default):
    meta = cell.get("metadata", {})
    return (meta.get("dotnet_interactive", {}).get("language")
            or meta.get("polyglot_notebook", {}).get("kernelName")
            or default)


def source_of(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def find_project_for_dll(dll_path):
    """<folder>/bin/<Configuration>/<tfm>/<Name>.dll -> <folder>/<Name>.csproj, searching upwards from the DLL."""
    name = os.path.splitext(os.path.basename(dll_path))[0]
    folder = os.path.dirname(os.path.abspath(dll_path))
    for _ in range(6):
        candidate = os.path.join(folder, name + ".csproj")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None


def split_type_declarations(lines):
    """Separates top-level type declarations (column 0, brace-balanced or ending in ';') from statements."""
    statements, types = [], []
    i = 0
    while i < len(lines):
        line = lines[i]
        if TYPE_DECL.match(line):
            block, depth, opened = [], 0, False
            while i < len(lines):
                text = lines[i]
                block.append(text)
                code = re.sub(r'"(\\.|[^"\\])*"|//.*$', "", text)
                depth += code.count("{") - code.count("}")
                opened = opened or "{" in code
                i += 1
                if (opened and depth <= 0) or (not opened and code.rstrip().endswith(";")):
                    break
            types.extend(block)
        else:
            statements.append(line)
            i += 1
    return statements, types


def translate(notebook_path):
    """Returns (app source, code cell indices) for the notebook at notebook_path."""
    with open(notebook_path, encoding="utf-8") as f:
        nb = json.load(f)
    if nb.get("nbformat") != 4:
        raise NotebookError(f"{notebook_path}: nbformat {nb.get('nbformat')} is not 4.")
    nb_dir = os.path.dirname(os.path.abspath(notebook_path))
    default = (nb.get("metadata", {}).get("polyglot_notebook", {}).get("kernelInfo", {}).get("defaultKernelName")
               or "csharp")
    directives, usings, body, types, cells = [], [], [], [], []
    project_outputs = set()
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        language = cell_language(cell, default)
        if language not in ("csharp", "C#"):
            raise NotebookError(f"{notebook_path}: cell {index} is in '{language}'; only C# cells can be run as an app.")
        cells.append(index)
        lines = source_of(cell).splitlines()
        kept = []
        for line in lines:
            m_dll, m_nuget = REF_DLL.match(line), REF_NUGET.match(line)
            if m_dll:
                dll = os.path.normpath(os.path.join(nb_dir, m_dll.group(1)))
                out_dir = os.path.dirname(dll)
                project = find_project_for_dll(dll)
                if project:
                    directives.append(f"#:project {os.path.relpath(project, nb_dir)}")
                    project_outputs.add(out_dir)
                    kept.append("")
                elif out_dir in project_outputs:
                    kept.append(f"// {line.strip()}: comes with the project built from that folder")
                else:
                    raise NotebookError(f"{notebook_path}: cell {index}: no project found for {m_dll.group(1)}, and a "
                                        "file-based app cannot reference a bare DLL.")
            elif m_nuget:
                package, version = m_nuget.group(1), m_nuget.group(2)
                directives.append(f"#:package {package}@{version}" if version else f"#:package {package}")
                kept.append("")
            elif line.lstrip().startswith(("#!", "#i ", "#r ")):
                raise NotebookError(f"{notebook_path}: cell {index}: magic command '{line.strip()}' is not supported.")
            elif USING.match(line):
                if line.strip() not in usings:
                    usings.append(line.strip())
                kept.append("")   # keeps the #line numbering of the cell
            else:
                kept.append(line)
        statements, declared = split_type_declarations(kept)
        body.append(f'System.Console.Out.Flush(); System.Console.WriteLine("{MARKER}{index}");')
        body.append(f"// ---- cell {index} ----")
        body.extend(statements)
        types.extend(declared)
    header = [
        f"// Generated by notebooks/run_notebook.py from {os.path.basename(notebook_path)}; do not edit.",
        *dict.fromkeys(directives),
        # File-based apps default to Native AOT (and its warnings); the kernel runs on the JIT, so this app does too.
        "#:property PublishAot=false",
        # The kernel reports warnings without failing; the repo's Directory.Build.props would make them errors.
        "#:property TreatWarningsAsErrors=false",
        "#:property NoWarn=CS1591;CS8321",
    ]
    if any(d.startswith("#:package") for d in directives):
        # The notebook pins its packages itself (as the kernel's #r "nuget:" does), so a repository's central package
        # management (Directory.Packages.props), which refuses versions on references, must not apply to the app.
        header.append("#:property ManagePackageVersionsCentrally=false")
    source = "\n".join(header + usings + [""] + body + ["System.Console.Out.Flush();", ""] + types) + "\n"
    return nb, source, cells


def split_output(stdout, cells):
    """Maps cell index -> text printed while it ran."""
    outputs = {i: "" for i in cells}
    current = None
    for line in stdout.splitlines(keepends=True):
        if line.startswith(MARKER):
            current = int(line[len(MARKER):].strip())
            continue
        if current is not None:
            outputs[current] += line
    return outputs


def write_outputs(notebook_path, nb, outputs, note):
    count = 0
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        count += 1
        cell["execution_count"] = count
        text = outputs.get(index, "")
        cell["outputs"] = [] if not text else [{
            "name": "stdout", "output_type": "stream", "text": text.splitlines(keepends=True)}]
    nb.setdefault("metadata", {}).setdefault("resnet_ml", {})["outputs_produced_by"] = note
    tmp = notebook_path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, notebook_path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("--write-outputs", action="store_true", help="store each cell's stdout in the notebook")
    parser.add_argument("--check", action="store_true", help="compile the cells, do not run them")
    parser.add_argument("--emit", metavar="FILE", help="write the generated app to FILE and stop")
    parser.add_argument("--configuration", default="Release")
    args = parser.parse_args(argv)

    notebook = os.path.abspath(args.notebook)
    try:
        nb, source, cells = translate(notebook)
    except NotebookError as e:
        print(f"run_notebook: {e}", file=sys.stderr)
        return 2
    if args.emit:
        with open(args.emit, "w", encoding="utf-8") as f:
            f.write(source)
        return 0

    nb_dir = os.path.dirname(notebook)
    # The app must sit in the notebook's folder: its #:project paths are relative to it and the repo's
    # Directory.Build.props (target framework, nullable) must apply as they do to the library.
    base = os.path.splitext(os.path.basename(notebook))[0]
    # A stable name lets the SDK reuse its build cache between runs (a file-based app is cached by path).
    app = os.path.join(nb_dir, f".{base}.run.cs")
    try:
        with open(app, "w", encoding="utf-8") as f:
            f.write(source)
        if args.check:
            cmd = ["dotnet", "build", app, "-c", args.configuration, "-nologo", "-v", "q"]
        else:
            cmd = ["dotnet", "run", "-c", args.configuration, app]
        print("run_notebook: " + " ".join(cmd), file=sys.stderr)
        proc = subprocess.Popen(cmd, cwd=nb_dir, stdout=subprocess.PIPE, text=True, encoding="utf-8")
        captured = []
        for line in proc.stdout:      # echo live: training prints progress
            captured.append(line)
            shown = f"--- cell {line[len(MARKER):].strip()} ---\n" if line.startswith(MARKER) else line
            sys.stdout.write(shown)
            sys.stdout.flush()
        rc = proc.wait()
    except BaseException:
        os.remove(app)
        raise
    if rc != 0:
        # Kept so the compiler's line numbers can be looked up ("// ---- cell N ----" heads each cell).
        print(f"run_notebook: {'build' if args.check else 'run'} failed (exit code {rc}); the app is {app}.", file=sys.stderr)
        return rc
    os.remove(app)
    if args.write_outputs and not args.check:
        note = (f"notebooks/run_notebook.py: cells compiled into a .NET file-based app and run with "
                f"`dotnet run -c {args.configuration}` (not by the .NET Interactive kernel)")
        write_outputs(notebook, nb, split_output("".join(captured), cells), note)
        print(f"run_notebook: outputs written to {args.notebook}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
