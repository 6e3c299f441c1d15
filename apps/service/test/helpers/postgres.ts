// The throwaway-database helper now lives beside the library's tests, which use it too.
export * from '../../../../test/helpers/postgres.js';
