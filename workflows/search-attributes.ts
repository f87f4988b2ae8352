import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Custom search attributes ops use to find a payment in the Web UI
 * (e.g. `PaypalTxnId = "6G996328CK404320L"` or `IpnFlags = "held"`).
 * The dev server registers them at start; production clusters need
 * `temporal operator search-attribute create` with the same names and types.
 */
export const SEARCH_ATTRIBUTES = {
  IpnIntegrationId: 'Keyword',
  PaypalTxnId: 'Keyword',
  CustomerId: 'Keyword',
  PaymentStatus: 'Keyword',
  IpnFlags: 'KeywordList',
} as const;

export const IntegrationIdKey = defineSearchAttributeKey('IpnIntegrationId', 'KEYWORD');
export const TxnIdKey = defineSearchAttributeKey('PaypalTxnId', 'KEYWORD');
export const CustomerIdKey = defineSearchAttributeKey('CustomerId', 'KEYWORD');
export const PaymentStatusKey = defineSearchAttributeKey('PaymentStatus', 'KEYWORD');
export const FlagsKey = defineSearchAttributeKey('IpnFlags', 'KEYWORD_LIST');
