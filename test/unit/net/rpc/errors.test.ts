import { describe, it, expect } from 'vitest'
import { invalidField, rpcErrorCode } from '../../../../src/net/rpc/errors.js'

describe('rpc error codes', () => {
  it('maps stream errors to codes', () => {
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'InvalidDataLengthError' }))).toBe('E_REQ_OVERSIZE')
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'UnexpectedEOFError' }))).toBe('E_STREAM_CLOSED')
    expect(rpcErrorCode(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe('E_REQ_TIMEOUT')
    expect(rpcErrorCode(new Error('x'))).toBe('E_INTERNAL')
  })
  it('names the refused field', () => {
    expect(() => invalidField('model.id', 'too long')).toThrow(expect.objectContaining({ code: 'E_REQ_INVALID', message: 'model.id: too long' }))
  })
})
