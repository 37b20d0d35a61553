package io.modelmerge.cli;

import picocli.CommandLine;

/** Sizes as people type them: {@code 5000000}, {@code 512m}, {@code 2g}, {@code 5G} (binary multiples). */
final class ByteSize implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
        return parse(value);
    }

    static long parse(String value) {
        String v = value.strip().toLowerCase();
        long multiplier = 1;
        if (v.endsWith("b")) {
            v = v.substring(0, v.length() - 1);
        }
        if (!v.isEmpty() && "kmgt".indexOf(v.charAt(v.length() - 1)) >= 0) {
            multiplier = 1L << (10 * ("kmgt".indexOf(v.charAt(v.length() - 1)) + 1));
            v = v.substring(0, v.length() - 1);
        }
        try {
            double number = Double.parseDouble(v);
            if (number <= 0 || Double.isNaN(number) || Double.isInfinite(number)) {
                throw new NumberFormatException();
            }
            return (long) (number * multiplier);
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not a size (e.g. 5000000, 512m, 2g)");
        }
    }
}
