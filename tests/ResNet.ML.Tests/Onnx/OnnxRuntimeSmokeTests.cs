using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ResNet.ML.Onnx;
using ResNet.ML.Onnx.Proto;

namespace ResNet.ML.Tests.Onnx;

[TestClass]
public class OnnxRuntimeSmokeTests
{
    // y = relu(x * W + b): a graph built here, in the test, and run by the real native ONNX Runtime.
    private static byte[] TinyGemmReluModel(float[] w, float[] b)
    {
        static ValueInfoProto Value(string name, params long[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (long d in dims) shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "batch" } : new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
        }
        var wt = new TensorProto { Name = "W", DataType = (int)TensorProto.Types.DataType.Float };
        wt.Dims.Add(new long[] { 3, 2 }); wt.FloatData.Add(w);
        var bt = new TensorProto { Name = "B", DataType = (int)TensorProto.Types.DataType.Float };
        bt.Dims.Add(2); bt.FloatData.Add(b);
        var graph = new GraphProto { Name = "tiny" };
        graph.Initializer.Add(wt); graph.Initializer.Add(bt);
        graph.Input.Add(Value("x", -1, 3));
        graph.Output.Add(Value("y", -1, 2));
        var gemm = new NodeProto { OpType = "Gemm", Name = "gemm" };
        gemm.Input.Add(new[] { "x", "W", "B" }); gemm.Output.Add("h");
        var relu = new NodeProto { OpType = "Relu", Name = "relu" };
        relu.Input.Add("h"); relu.Output.Add("y");
        graph.Node.Add(gemm); graph.Node.Add(relu);
        var model = new ModelProto { IrVersion = 8, ProducerName = "ResNet.ML.Tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model.ToByteArray();
    }

    [TestMethod]
    public void InferenceSession_runs_a_graph_built_in_the_test()
    {
        OnnxRuntimeNative.EnsureAvailable();
        float[] w = [1, -1, 2, 0.5f, -3, 1];   // 3x2, row-major
        float[] b = [0.25f, -0.5f];
        using var session = new InferenceSession(TinyGemmReluModel(w, b));
        float[] x = [1, 2, 3, -1, 0, 4];        // two rows
        var input = new DenseTensor<float>(x, [2, 3]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", input)]);
        float[] y = results.First().AsEnumerable<float>().ToArray();
        float[] expected = new float[4];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 2; c++)
            {
                float s = b[c];
                for (int k = 0; k < 3; k++) s += x[r * 3 + k] * w[k * 2 + c];
                expected[r * 2 + c] = MathF.Max(0, s);
            }
        CollectionAssert.AreEqual(expected, y);
        Assert.IsTrue(y.Any(v => v > 0) && y.Any(v => v == 0), "the numbers exercise both sides of the ReLU");
    }

    [TestMethod]
    public void Missing_native_library_fails_with_a_message_that_says_how_to_get_it()
    {
        string empty = Directory.CreateTempSubdirectory("resnetml-no-ort-").FullName;
        try
        {
            var ex = Assert.ThrowsExactly<OnnxRuntimeUnavailableException>(() => OnnxRuntimeNative.EnsureAvailable(empty, resolver: null));
            StringAssert.Contains(ex.Message, OnnxRuntimeNative.LibraryFileName);
            StringAssert.Contains(ex.Message, "Microsoft.ML.OnnxRuntime");
            StringAssert.Contains(ex.Message, empty);
        }
        finally { Directory.Delete(empty, true); }
    }
}
