/* mod_test_not_a_module: a shared library without parley_module_entry. The
 * loader must refuse it by name, without crashing. */
int mod_test_not_a_module_answer(void);
int mod_test_not_a_module_answer(void) { return 42; }
