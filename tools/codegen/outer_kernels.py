#!/usr/bin/env python3
"""Prints the unrolled outer-product weight-gradient tiles of src/ResNet.ML/Tensors/DirectConv.cs (Outer4x6, Outer2x12,
Outer1x12): V vectors of 16 output channels x T taps, one accumulator register each. The JIT keeps about 24 Vector512
locals in registers only when they are written out by name, so the shapes are generated rather than looped.
Usage: python3 tools/codegen/outer_kernels.py   (paste the output over the generated block in DirectConv.cs)"""

SHAPES = [(4, 6), (2, 12), (1, 12)]


def kernel(vectors, taps):
    lines = [
        "    [MethodImpl(MethodImplOptions.AggressiveOptimization)]",
        f"    private static void Outer{vectors}x{taps}(float* x, int rowPitch, int oh, int ow, int* offs, float* dyT, int ld, float* g)",
        "    {",
    ]
    for j in range(taps):
        lines.append(f"        float* g{j} = g + {j} * ld; long o{j} = offs[{j}];")
    for j in range(taps):
        lines.append("        " + " ".join(f"var a{j}_{v} = Vector512.Load(g{j} + {16 * v});" for v in range(vectors)))
    lines += [
        "        float* d = dyT;",
        "        for (int oy = 0; oy < oh; oy++)",
        "        {",
        "            float* px = x + oy * rowPitch;",
        "            for (int ox = 0; ox < ow; ox++, px++, d += ld)",
        "            {",
        "                " + " ".join(f"var d{v} = Vector512.Load(d + {16 * v});" for v in range(vectors)),
    ]
    for j in range(taps):
        fmas = " ".join(f"a{j}_{v} = Vector512.FusedMultiplyAdd(b, d{v}, a{j}_{v});" for v in range(vectors))
        lines.append(f"                {'var ' if j == 0 else ''}b = Vector512.Create(px[o{j}]); {fmas}")
    lines += ["            }", "        }"]
    for j in range(taps):
        lines.append("        " + " ".join(f"Vector512.Store(a{j}_{v}, g{j} + {16 * v});" for v in range(vectors)))
    lines.append("    }")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print("\n".join(kernel(v, t) for v, t in SHAPES), end="")
