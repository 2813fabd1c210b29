# Integer index arithmetic shared by the kernels (C division truncates towards zero).

cdef inline Py_ssize_t floor_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """floor(a / b) for b > 0."""
    if a >= 0:
        return a / b
    return -((-a + b - 1) / b)


cdef inline Py_ssize_t ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0."""
    return -floor_div(-a, b)
