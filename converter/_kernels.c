/* The converter's two compiled kernels, each bit-exact with gguf-py's numpy (what
 * llama.cpp's convert_hf_to_gguf.py writes, and converter/_tensors.py's numpy path):
 *
 * - q8_0_16bit: Q8_0 of bfloat16 / float16 values at memory speed. numpy needs about
 *   ten passes over each run; this is one.
 * - lookup16: a 16-bit table lookup per value, for bfloat16 -> float16 through the
 *   table of what numpy casts each of the 65,536 patterns to (exact by construction).
 *   numpy's take() first widens every index to 64 bits; this is one pass, about twice
 *   as fast.
 *
 * Q8_0:
 * Why C: no library computes these exact bytes fast. ggml's vectorised
 * quantize_row_q8_0 multiplies by 127/max and rounds half to even (other bytes); its
 * reference quantize_row_q8_0_ref gives these bytes but rounds with a roundf() call per
 * value, slower than numpy.
 *
 * What stays in Python: a block's scale (float16 bits) and the float32 inverse the
 * values are multiplied by depend only on the block's largest |x|, one of 32,768
 * 16-bit patterns, so numpy computes both tables once (_q8_0_tables) and they come in
 * here; float16 sources come with numpy's float16 -> float32 table. No float rounding
 * is reimplemented here except the quants' own: v = x * inverse, then
 * trunc(v + copysign(0.49999997, v)), which is gguf-py's round-half-away-from-zero for
 * every finite v with |v| < 256. Blocks holding an infinity or NaN, or whose scale is
 * so small that its inverse overflows, are left to numpy (the function returns False),
 * so every value cast to an integer here is finite and well below 256 in magnitude. The build turns off floating-point contraction
 * (-ffp-contract=off in setup.py): a fused multiply-add would round differently.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 32
#define BLOCK_BYTES 34 /* the float16 scale, then 32 int8 quants */
#define MAGNITUDES 32768

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* One package runs on every x86-64 CPU: an AVX2 copy where the CPU has it. */
#define CLONED __attribute__((target_clones("avx2", "default")))
#else
#define CLONED
#endif

static const float JUST_BELOW_HALF = 0x1.fffffep-2f;

static inline float bf16_value(uint16_t bits) {
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, sizeof value);
    return value;
}

/* The block maximum of |x| as a 16-bit magnitude pattern: for finite values and
 * infinities the order of the patterns is the order of the magnitudes. */
static inline uint16_t block_top(const uint16_t *bits) {
    int16_t top = 0;
    for (int j = 0; j < BLOCK; j++) {
        int16_t magnitude = (int16_t)(bits[j] & 0x7FFF);
        top = magnitude > top ? magnitude : top;
    }
    return (uint16_t)top;
}

static inline void quantize_values(const float *values, float inverse, int8_t *quants) {
    for (int j = 0; j < BLOCK; j++) {
        float scaled = values[j] * inverse;
        float rounded = scaled + copysignf(JUST_BELOW_HALF, scaled);
        quants[j] = (int8_t)(int32_t)rounded;
    }
}

/* 0 when a block holds an infinity or NaN (magnitude >= ``limit``); the output is then
 * incomplete and the caller encodes the run another way. bfloat16 when ``f16_values``
 * is NULL; inlined into each caller below with that known, so each loop vectorises. */
static inline int quantize(const uint16_t *bits, Py_ssize_t blocks, uint16_t limit,
                           const uint16_t *scales, const float *inverses,
                           const float *f16_values, uint8_t *out) {
    float values[BLOCK];
    for (Py_ssize_t b = 0; b < blocks; b++, bits += BLOCK, out += BLOCK_BYTES) {
        uint16_t top = block_top(bits);
        float inverse = inverses[top];
        if (top >= limit || !isfinite(inverse)) /* also: a tiny scale's inverse overflows */
            return 0;
        memcpy(out, &scales[top], 2);
        for (int j = 0; j < BLOCK; j++)
            values[j] = f16_values ? f16_values[bits[j]] : bf16_value(bits[j]);
        quantize_values(values, inverse, (int8_t *)(out + 2));
    }
    return 1;
}

CLONED static int quantize_bf16(const uint16_t *bits, Py_ssize_t blocks,
                                const uint16_t *scales, const float *inverses,
                                uint8_t *out) {
    return quantize(bits, blocks, 0x7F80, scales, inverses, NULL, out);
}

CLONED static int quantize_f16(const uint16_t *bits, Py_ssize_t blocks,
                               const uint16_t *scales, const float *inverses,
                               const float *f16_values, uint8_t *out) {
    return quantize(bits, blocks, 0x7C00, scales, inverses, f16_values, out);
}

CLONED static void lookup(const uint16_t *table, const uint16_t *bits, Py_ssize_t count,
                   uint16_t *out) {
    for (Py_ssize_t i = 0; i < count; i++)
        out[i] = table[bits[i]];
}

static int get_buffer(PyObject *object, Py_buffer *view, int writable, const char *name,
                      Py_ssize_t expected) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object, view, flags) != 0)
        return -1;
    if (expected >= 0 && view->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, expected %zd", name, view->len,
                     expected);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(q8_0_16bit_doc,
             "q8_0_16bit(bits, bf16, scales, inverses, f16_values, out) -> bool\n\n"
             "Q8_0 of 16-bit source values ``bits`` (a multiple of 32; bfloat16 when\n"
             "``bf16``, else float16 read through ``f16_values``, float32[65536]) into\n"
             "``out`` (34 bytes per 32 values). ``scales`` (uint16[32768], float16 bits)\n"
             "and ``inverses`` (float32[32768]) are indexed by a block's largest\n"
             "magnitude. False, with ``out`` incomplete, when a value is infinite or NaN.\n"
             "Runs without the GIL.");

static PyObject *q8_0_16bit(PyObject *self, PyObject *args) {
    PyObject *bits_object, *scales_object, *inverses_object, *f16_object, *out_object;
    int bf16;
    if (!PyArg_ParseTuple(args, "OpOOOO", &bits_object, &bf16, &scales_object,
                          &inverses_object, &f16_object, &out_object))
        return NULL;
    Py_buffer bits, scales, inverses, f16_values = {0}, out;
    if (get_buffer(bits_object, &bits, 0, "bits", -1) != 0)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t blocks = bits.len / (BLOCK * 2);
    if (bits.len % (BLOCK * 2) != 0) {
        PyErr_Format(PyExc_ValueError, "bits: %zd bytes, not a whole number of blocks",
                     bits.len);
        goto release_bits;
    }
    if (get_buffer(scales_object, &scales, 0, "scales", MAGNITUDES * 2) != 0)
        goto release_bits;
    if (get_buffer(inverses_object, &inverses, 0, "inverses", MAGNITUDES * 4) != 0)
        goto release_scales;
    if (!bf16 && get_buffer(f16_object, &f16_values, 0, "f16_values", 65536 * 4) != 0)
        goto release_inverses;
    if (get_buffer(out_object, &out, 1, "out", blocks * BLOCK_BYTES) != 0)
        goto release_f16;
    int complete;
    Py_BEGIN_ALLOW_THREADS;
    if (bf16)
        complete = quantize_bf16(bits.buf, blocks, scales.buf, inverses.buf, out.buf);
    else
        complete = quantize_f16(bits.buf, blocks, scales.buf, inverses.buf, f16_values.buf,
                                out.buf);
    Py_END_ALLOW_THREADS;
    result = PyBool_FromLong(complete);
    PyBuffer_Release(&out);
release_f16:
    if (!bf16)
        PyBuffer_Release(&f16_values);
release_inverses:
    PyBuffer_Release(&inverses);
release_scales:
    PyBuffer_Release(&scales);
release_bits:
    PyBuffer_Release(&bits);
    return result;
}

PyDoc_STRVAR(lookup16_doc,
             "lookup16(table, bits, out)\n\n"
             "``out[i] = table[bits[i]]`` for 16-bit ``bits`` and a 16-bit ``table`` of\n"
             "65,536 entries (e.g. float16 of every bfloat16 pattern, as numpy casts it).\n"
             "numpy's take() widens each index to 64 bits first; this is one pass.\n"
             "Runs without the GIL.");

static PyObject *lookup16(PyObject *self, PyObject *args) {
    PyObject *table_object, *bits_object, *out_object;
    if (!PyArg_ParseTuple(args, "OOO", &table_object, &bits_object, &out_object))
        return NULL;
    Py_buffer table, bits, out;
    if (get_buffer(table_object, &table, 0, "table", 65536 * 2) != 0)
        return NULL;
    PyObject *result = NULL;
    if (get_buffer(bits_object, &bits, 0, "bits", -1) != 0)
        goto release_table;
    if (bits.len % 2 != 0) {
        PyErr_Format(PyExc_ValueError, "bits: %zd bytes, not 16-bit values", bits.len);
        goto release_bits;
    }
    if (get_buffer(out_object, &out, 1, "out", bits.len) != 0)
        goto release_bits;
    Py_BEGIN_ALLOW_THREADS;
    lookup(table.buf, bits.buf, bits.len / 2, out.buf);
    Py_END_ALLOW_THREADS;
    result = Py_None;
    Py_INCREF(result);
    PyBuffer_Release(&out);
release_bits:
    PyBuffer_Release(&bits);
release_table:
    PyBuffer_Release(&table);
    return result;
}

static PyMethodDef methods[] = {
    {"lookup16", lookup16, METH_VARARGS, lookup16_doc},
    {"q8_0_16bit", q8_0_16bit, METH_VARARGS, q8_0_16bit_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "converter._kernels",
    "The converter's compiled kernels, bit-exact with gguf-py (see _kernels.c).", -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
