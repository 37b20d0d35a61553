package io.modelmerge.storage.torch;

import io.modelmerge.storage.checkpoint.InvalidCheckpointException;
import io.modelmerge.storage.safetensors.DType;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the pickle of a PyTorch state dict ({@code data.pkl} in a {@code torch.save} archive) without running
 * it: a stack machine for the opcodes pickle protocols 2 to 5 write for dicts, lists, tuples, strings and
 * numbers, which knows the few globals that rebuilding tensors needs ({@code collections.OrderedDict},
 * {@code torch._utils._rebuild_tensor_v2} and {@code _rebuild_parameter}, the {@code torch.*Storage} types) and
 * refuses any other by name, before anything could be called. Nothing is ever called: a tensor comes out as a
 * description of where its bytes are ({@link TorchTensor}).
 */
public final class TorchPickle {
    private static final Map<String, DType> STORAGES = Map.of("FloatStorage", DType.F32, "HalfStorage", DType.F16,
            "BFloat16Storage", DType.BF16, "DoubleStorage", DType.F64, "LongStorage", DType.I64, "IntStorage",
            DType.I32, "ShortStorage", DType.I16, "CharStorage", DType.I8, "ByteStorage", DType.U8, "BoolStorage",
            DType.BOOL);
    private static final String ORDERED_DICT = "collections.OrderedDict";
    private static final String REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
    private static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    private static final Set<String> CALLABLES = Set.of(ORDERED_DICT, REBUILD_TENSOR, REBUILD_PARAMETER);

    private record Global(String name) {
    }

    private record Tuple(List<Object> items) {
    }

    private record Storage(DType dtype, String key, long elements) {
    }

    /** A tensor rebuilt from its storage: everything but its name. */
    private record Rebuilt(Storage storage, long offset, long[] shape, long[] stride) {
    }

    private static final Object MARK = new Object();

    private final String source;
    private final ByteBuffer in;
    private final List<Object> stack = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private TorchPickle(String source, byte[] pickle) {
        this.source = source;
        this.in = ByteBuffer.wrap(pickle).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The tensors of the state dict pickled in {@code pickle}, in the order it lists them. */
    public static List<TorchTensor> read(String source, byte[] pickle) throws InvalidCheckpointException {
        try {
            return new TorchPickle(source, pickle).tensors();
        } catch (java.nio.BufferUnderflowException e) {
            throw new InvalidCheckpointException(source + ": the pickle ends inside an opcode");
        } catch (ClassCastException | IndexOutOfBoundsException | ArithmeticException e) {
            throw new InvalidCheckpointException(source + ": the pickle is not a state dict torch.save writes ("
                    + e.getMessage() + ")");
        }
    }

    private List<TorchTensor> tensors() throws InvalidCheckpointException {
        Object top = load();
        if (!(top instanceof Map<?, ?> dict)) {
            throw fail("holds a " + kind(top) + ", not a state dict of tensors");
        }
        List<TorchTensor> tensors = new ArrayList<>();
        for (var entry : dict.entrySet()) {
            if (!(entry.getKey() instanceof String name)) {
                throw fail("has a key " + entry.getKey() + " that is not a tensor name");
            }
            if (!(entry.getValue() instanceof Rebuilt t)) {
                throw fail("entry '" + name + "' is a " + kind(entry.getValue()) + ", not a tensor");
            }
            tensors.add(new TorchTensor(name, t.storage().dtype(), t.shape(), t.stride(), t.storage().key(), t.offset()));
        }
        return tensors;
    }

    private Object load() throws InvalidCheckpointException {
        while (true) {
            int op = in.get() & 0xFF;
            switch (op) {
                case 0x80 -> in.get();                                  // PROTO
                case 0x95 -> in.getLong();                              // FRAME
                case '.' -> {                                           // STOP
                    return pop();
                }
                case '(' -> stack.add(MARK);
                case '}', ']' -> stack.add(op == '}' ? new LinkedHashMap<>() : new ArrayList<>());
                case ')' -> stack.add(new Tuple(List.of()));
                case 't' -> stack.add(new Tuple(popToMark()));
                case 0x85, 0x86, 0x87 -> {                              // TUPLE1..3
                    int n = op - 0x84;
                    List<Object> items = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
                    stack.subList(stack.size() - n, stack.size()).clear();
                    stack.add(new Tuple(items));
                }
                case 'l' -> stack.add(new ArrayList<>(popToMark()));
                case 'd' -> stack.add(pairs(new LinkedHashMap<>(), popToMark()));
                case 'a' -> {
                    Object item = pop();
                    list(peek()).add(item);
                }
                case 'e' -> {
                    List<Object> items = popToMark();
                    list(peek()).addAll(items);
                }
                case 's' -> {
                    Object value = pop();
                    Object key = pop();
                    dict(peek()).put(key, value);
                }
                case 'u' -> {
                    List<Object> items = popToMark();
                    pairs(dict(peek()), items);
                }
                case 'J' -> stack.add((long) in.getInt());             // BININT
                case 'K' -> stack.add((long) (in.get() & 0xFF));       // BININT1
                case 'M' -> stack.add((long) (in.getShort() & 0xFFFF)); // BININT2
                case 0x8a -> stack.add(longOf(bytes(in.get() & 0xFF))); // LONG1
                case 'G' -> stack.add(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // BINFLOAT, big-endian
                case 'N' -> stack.add(null);
                case 0x88, 0x89 -> stack.add(op == 0x88);               // NEWTRUE, NEWFALSE
                case 'X' -> stack.add(text(bytes(length(in.getInt() & 0xFFFFFFFFL))));   // BINUNICODE
                case 0x8c -> stack.add(text(bytes(in.get() & 0xFF)));                    // SHORT_BINUNICODE
                case 0x8d -> stack.add(text(bytes(length(in.getLong()))));              // BINUNICODE8
                case 'U', 'C' -> stack.add(text(bytes(in.get() & 0xFF)));               // SHORT_BINSTRING/BYTES
                case 'T', 'B' -> stack.add(text(bytes(length(in.getInt() & 0xFFFFFFFFL)))); // BINSTRING/BYTES
                case 'c' -> stack.add(global(line() + "." + line()));                   // GLOBAL
                case 0x93 -> {                                                          // STACK_GLOBAL
                    String name = (String) pop();
                    String module = (String) pop();
                    stack.add(global(module + "." + name));
                }
                case 'Q' -> stack.add(storage(pop()));                                  // BINPERSID
                case 'R' -> {                                                           // REDUCE
                    Tuple args = (Tuple) pop();
                    stack.add(call(pop(), args.items()));
                }
                case 'b' -> setState(pop());                                            // BUILD
                case 'q' -> memo.put((long) (in.get() & 0xFF), peek());                 // BINPUT
                case 'r' -> memo.put(in.getInt() & 0xFFFFFFFFL, peek());                // LONG_BINPUT
                case 0x94 -> memo.put((long) memo.size(), peek());                      // MEMOIZE
                case 'h' -> stack.add(recall(in.get() & 0xFF));                         // BINGET
                case 'j' -> stack.add(recall(in.getInt() & 0xFFFFFFFFL));                // LONG_BINGET
                default -> throw fail("uses pickle opcode 0x" + Integer.toHexString(op) + " at byte "
                        + (in.position() - 1) + ", which a state dict torch.save writes never does");
            }
        }
    }

    private Global global(String name) throws InvalidCheckpointException {
        boolean storage = name.startsWith("torch.") && STORAGES.containsKey(name.substring("torch.".length()));
        if (!storage && !CALLABLES.contains(name)) {
            throw fail("names the global '" + name + "', which rebuilding tensors never needs; refusing to"
                    + " unpickle it (only " + ORDERED_DICT + ", " + REBUILD_TENSOR + ", " + REBUILD_PARAMETER
                    + " and torch.*Storage are allowed)");
        }
        return new Global(name);
    }

    /** A persistent id: {@code ('storage', torch.XStorage, key, location, elements)}. */
    private Storage storage(Object pid) throws InvalidCheckpointException {
        if (!(pid instanceof Tuple(List<Object> items)) || items.size() != 5 || !"storage".equals(items.get(0))
                || !(items.get(1) instanceof Global(String type)) || !type.startsWith("torch.")
                || !STORAGES.containsKey(type.substring("torch.".length()))) {
            throw fail("has a persistent id " + pid + " that is not a tensor storage");
        }
        long elements = (Long) items.get(4);
        if (elements < 0) {
            throw fail("has a storage of " + elements + " elements");
        }
        return new Storage(STORAGES.get(type.substring("torch.".length())), (String) items.get(2), elements);
    }

    private Object call(Object callable, List<Object> args) throws InvalidCheckpointException {
        if (!(callable instanceof Global(String name)) || !CALLABLES.contains(name)) {
            throw fail("calls " + kind(callable) + ", which is not a function rebuilding tensors");
        }
        return switch (name) {
            case ORDERED_DICT -> {
                if (!args.isEmpty()) {
                    throw fail("builds an OrderedDict from arguments, which torch.save never does");
                }
                yield new LinkedHashMap<>();
            }
            case REBUILD_PARAMETER -> {
                if (!(args.getFirst() instanceof Rebuilt tensor)) {
                    throw fail("rebuilds a parameter from a " + kind(args.getFirst()) + ", not a tensor");
                }
                yield tensor;
            }
            default -> rebuild(args);
        };
    }

    /** {@code _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata])}. */
    private Rebuilt rebuild(List<Object> args) throws InvalidCheckpointException {
        if (args.size() < 4 || !(args.get(0) instanceof Storage storage)) {
            throw fail("rebuilds a tensor from " + args + ", not from a storage, offset, size and stride");
        }
        long offset = (Long) args.get(1);
        long[] shape = longs(args.get(2));
        long[] stride = longs(args.get(3));
        if (offset < 0 || shape.length != stride.length) {
            throw fail("rebuilds a tensor with offset " + offset + ", size " + args.get(2) + " and stride " + args.get(3));
        }
        long last = offset;   // the last element the view reaches
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0 || stride[i] < 0) {
                throw fail("rebuilds a tensor of size " + args.get(2) + " and stride " + args.get(3));
            }
            elements = Math.multiplyExact(elements, shape[i]);
            last = Math.addExact(last, Math.multiplyExact(Math.max(0, shape[i] - 1), stride[i]));
        }
        if (elements > 0 && last >= storage.elements()) {
            throw fail("has a tensor of size " + args.get(2) + " at offset " + offset + " that reaches past its storage '"
                    + storage.key() + "' of " + storage.elements() + " elements");
        }
        return new Rebuilt(storage, offset, shape, stride);
    }

    /** BUILD: torch's state dicts set their {@code _metadata} attribute (module versions), which is not kept. */
    private void setState(Object state) throws InvalidCheckpointException {
        if (!(peek() instanceof Map<?, ?>) || !(state instanceof Map<?, ?> || state instanceof Tuple)) {
            throw fail("sets the state of a " + kind(peek()) + ", which a state dict torch.save writes never does");
        }
    }

    private long[] longs(Object tuple) throws InvalidCheckpointException {
        if (!(tuple instanceof Tuple(List<Object> items))) {
            throw fail("has a tensor size or stride " + kind(tuple) + " that is not a tuple");
        }
        long[] out = new long[items.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (Long) items.get(i);
        }
        return out;
    }

    private static Map<Object, Object> pairs(Map<Object, Object> dict, List<Object> items) {
        for (int i = 0; i + 1 < items.size(); i += 2) {
            dict.put(items.get(i), items.get(i + 1));
        }
        return dict;
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) throws InvalidCheckpointException {
        if (!(o instanceof ArrayList<?>)) {
            throw fail("appends to a " + kind(o));
        }
        return (List<Object>) o;
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> dict(Object o) throws InvalidCheckpointException {
        if (!(o instanceof Map<?, ?>)) {
            throw fail("sets an item of a " + kind(o));
        }
        return (Map<Object, Object>) o;
    }

    private Object recall(long index) throws InvalidCheckpointException {
        if (!memo.containsKey(index)) {
            throw fail("recalls memo entry " + index + ", which was never stored");
        }
        return memo.get(index);
    }

    private Object pop() throws InvalidCheckpointException {
        if (stack.isEmpty() || stack.getLast() == MARK) {
            throw fail("pops from an empty stack at byte " + in.position());
        }
        return stack.removeLast();
    }

    private Object peek() throws InvalidCheckpointException {
        if (stack.isEmpty() || stack.getLast() == MARK) {
            throw fail("works on an empty stack at byte " + in.position());
        }
        return stack.getLast();
    }

    private List<Object> popToMark() throws InvalidCheckpointException {
        int mark = stack.lastIndexOf(MARK);
        if (mark < 0) {
            throw fail("closes a collection it never opened at byte " + in.position());
        }
        List<Object> items = new ArrayList<>(stack.subList(mark + 1, stack.size()));
        stack.subList(mark, stack.size()).clear();
        return items;
    }

    private int length(long n) throws InvalidCheckpointException {
        if (n > in.remaining()) {
            throw fail("declares a string of " + n + " bytes with " + in.remaining() + " left");
        }
        return (int) n;
    }

    private byte[] bytes(int n) {
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private String line() {
        StringBuilder s = new StringBuilder();
        for (byte b = in.get(); b != '\n'; b = in.get()) {
            s.append((char) (b & 0xFF));
        }
        return s.toString();
    }

    private static String text(byte[] utf8) {
        return new String(utf8, StandardCharsets.UTF_8);
    }

    /** LONG1's little-endian two's complement bytes. */
    private static long longOf(byte[] le) {
        byte[] be = new byte[Math.max(1, le.length)];
        for (int i = 0; i < le.length; i++) {
            be[be.length - 1 - i] = le[i];
        }
        return le.length == 0 ? 0 : new BigInteger(be).longValueExact();
    }

    private static String kind(Object o) {
        return switch (o) {
            case null -> "None";
            case Global(String name) -> name;
            case Rebuilt r -> "tensor";
            case Storage s -> "storage";
            case Tuple t -> "tuple";
            case Map<?, ?> m -> "dict";
            case List<?> l -> "list";
            default -> o.getClass().getSimpleName();
        };
    }

    private InvalidCheckpointException fail(String what) {
        return new InvalidCheckpointException(source + ": the pickle " + what);
    }
}
