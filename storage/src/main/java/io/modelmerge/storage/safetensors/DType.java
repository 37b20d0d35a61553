package io.modelmerge.storage.safetensors;

import java.util.Optional;

/**
 * Element types of the safetensors format. Declared in the reference implementation's order (ascending
 * alignment), which the writer relies on: tensors are laid out by descending dtype, then by name.
 */
public enum DType {
    BOOL(8),
    F4(4),
    F6_E2M3(6),
    F6_E3M2(6),
    U8(8),
    I8(8),
    F8_E5M2(8),
    F8_E4M3(8),
    F8_E8M0(8),
    F8_E4M3FNUZ(8),
    F8_E5M2FNUZ(8),
    I16(16),
    U16(16),
    F16(16),
    BF16(16),
    I32(32),
    U32(32),
    F32(32),
    C64(64),
    F64(64),
    I64(64),
    U64(64);

    private final int bits;

    DType(int bits) {
        this.bits = bits;
    }

    /** Size of one element in bits; sub-byte types (F4, F6_*) pack elements without padding. */
    public int bits() {
        return bits;
    }

    /**
     * Bytes taken by {@code elements} elements.
     *
     * @throws ArithmeticException if the count overflows or does not end on a byte boundary
     */
    public long byteLength(long elements) {
        long totalBits = Math.multiplyExact(elements, (long) bits);
        if (totalBits % 8 != 0) {
            throw new ArithmeticException(elements + " elements of " + this + " do not end on a byte boundary");
        }
        return totalBits / 8;
    }

    /** The dtype named {@code name} exactly as the format spells it, if there is one. */
    public static Optional<DType> parse(String name) {
        for (DType type : values()) {
            if (type.name().equals(name)) {
                return Optional.of(type);
            }
        }
        return Optional.empty();
    }
}
