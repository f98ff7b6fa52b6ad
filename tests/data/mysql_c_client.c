/* A C client of libmariadb for tests/test_ltrace.py: mysql_query (which calls mysql_real_query inside
   the library), a prepared statement executed once, and one prepared and never executed.
   Usage: mysql_c_client USER PASSWORD DATABASE */
#include <mysql.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    MYSQL *connection = mysql_init(NULL);
    if (!mysql_real_connect(connection, "127.0.0.1", argv[1], argv[2], argv[3], 3306, NULL, 0)) {
        fprintf(stderr, "%s\n", mysql_error(connection));
        return 1;
    }
    if (mysql_query(connection, "SELECT title FROM books ORDER BY id")) return 1;
    MYSQL_RES *result = mysql_store_result(connection);
    printf("rows %llu\n", (unsigned long long)mysql_num_rows(result));
    mysql_free_result(result);

    const char *executed = "SELECT title FROM books WHERE id = ?";
    MYSQL_STMT *statement = mysql_stmt_init(connection);
    if (mysql_stmt_prepare(statement, executed, strlen(executed))) return 1;
    int id = 2;
    MYSQL_BIND parameter;
    memset(&parameter, 0, sizeof parameter);
    parameter.buffer_type = MYSQL_TYPE_LONG;
    parameter.buffer = &id;
    if (mysql_stmt_bind_param(statement, &parameter) || mysql_stmt_execute(statement)) return 1;
    mysql_stmt_store_result(statement);
    mysql_stmt_close(statement);

    const char *unused = "SELECT COUNT(*) FROM books WHERE title LIKE ?";
    statement = mysql_stmt_init(connection);
    if (mysql_stmt_prepare(statement, unused, strlen(unused))) return 1;
    mysql_stmt_close(statement);
    mysql_close(connection);
    return 0;
}
