// Layer 10: the M:N runtime's name for the one FIFO (Base/FIFO.swift), kept for the code that
// still uses it.

/// The FIFO of the M:N runtime's queues: `FIFO`.
@usableFromInline
typealias MNFIFO<Element> = FIFO<Element>
