"""mulberry32, bit-identical to the generator in tests/harness.ts, so golden scripts regenerate test inputs
instead of committing them."""
M32 = 0xFFFFFFFF


def mulberry32(seed):
    state = [seed & M32]

    def imul(a, b):
        return (a * b) & M32

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + imul(t ^ (t >> 7), t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296.0

    return nxt
